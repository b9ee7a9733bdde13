"""One forward pass that fixes everything non-linear: attention patterns, norm scales, MLP gates.

With these frozen, each layer is a linear map of the residual stream, so the
stream can be split exactly into per-source contributions (see decompose.py).
Every tensor here is fp32, on the model's device, for one prompt (no padding).
The pass is an ordinary capture whose plan sets ``frozen`` (lmxray.capture).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from lmxray.capture import CapturePlan, capture
from lmxray.capture.build import build_traces
from lmxray.trace.types import Trace

# What the capture keeps: per-head patterns, full residuals and embedding, the frozen norm scales and gates.
_PLAN = CapturePlan(attention=True, per_head=True, row_stats=False, components=("input_embedding", "residual"),
                    n_values=None, lens=False, frozen=True)


@dataclass
class Frozen:
    """The quantities one normal forward pass fixes; ``[layer, pos, ...]`` unless noted."""

    embedding: torch.Tensor  # [pos, d_model]: the residual entering layer 0 (token + position embedding)
    residual: torch.Tensor  # [layer, pos, d_model]: the true residual leaving each layer
    pattern: torch.Tensor  # [layer, head, q_pos, k_pos]: attention probabilities
    input_scale: torch.Tensor  # [layer, pos]: 1/rms (or 1/std) of the input norm
    mlp_scale: torch.Tensor  # [layer, pos]: same for the norm before the MLP
    attn_post_scale: torch.Tensor | None  # [layer, pos]: post-attention norm (Gemma), else None
    mlp_post_scale: torch.Tensor | None  # [layer, pos]: post-MLP norm (Gemma), else None
    mlp_gate: torch.Tensor  # [layer, pos, d_mlp]: act(gate) (GLU) or act(z)/z (plain MLP)
    final_scale: torch.Tensor  # [pos]: scale of the final norm
    final_normed: torch.Tensor  # [pos, d_model]: the final norm's output (what the unembedding reads)
    logits: torch.Tensor  # [pos, vocab]: the model's final logits (softcapped where the model caps)
    trace: Trace  # the same pass as a trace: top-k, head-summed attention (no per-head maps)


@torch.no_grad()
def freeze(model, prompt: str, position: int) -> Frozen:
    """Run ``prompt`` once through ``model`` and keep the frozen quantities (plus a Trace of the same pass)."""
    ids = model.encode(prompt)
    captured = capture(model, [ids], _PLAN, rows="all", logits_at="all")
    # the trace keeps the head-summed map only
    summed = dataclasses.replace(captured, plan=dataclasses.replace(_PLAN, per_head=False, components=()))
    trace = build_traces(model, summed, [prompt], [position], [{}])[0]
    taps = captured.frozen
    first = lambda t: None if t is None else t[:, 0]  # noqa: E731  [layer, batch, ...] -> [layer, ...]
    return Frozen(
        embedding=captured.summary("input_embedding")[1][0, 0], residual=captured.summary("residual")[1][:, 0],
        pattern=captured.attention_heads[:, 0], input_scale=first(taps.stacked("input")),
        mlp_scale=first(taps.stacked("mlp")), attn_post_scale=first(taps.stacked("attn_post")),
        mlp_post_scale=first(taps.stacked("mlp_post")), mlp_gate=first(taps.stacked("gate")),
        final_scale=taps.final_scale[0], final_normed=taps.final_normed[0],
        logits=captured.logits[0].float(), trace=trace,
    )
