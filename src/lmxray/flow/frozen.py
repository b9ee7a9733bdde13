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

from lmxray.adapters import get_path
from lmxray.capture import CapturePlan, capture
from lmxray.capture.build import build_traces
from lmxray.flow.maps import expert_weights
from lmxray.trace.types import Trace

# What the capture keeps: per-head patterns, full residuals and embedding, the frozen norm scales and gates.
_PLAN = CapturePlan(attention=True, per_head=True, row_stats=False, components=("input_embedding", "residual"),
                    n_values=None, lens=False, frozen=True)


@dataclass
class Routed:
    """One mixture-of-experts layer frozen: which experts each position used, their weights and gates."""

    index: torch.Tensor  # [pos, k]: the experts chosen at each position (top-k, exact)
    weight: torch.Tensor  # [pos, k]: their routing weights
    gate: torch.Tensor  # [pos, k, d_expert]: act(gate projection) of each chosen expert
    shared_gate: torch.Tensor | None  # [pos, d_shared]: the shared expert's act(gate), when there is one
    shared_scale: torch.Tensor | None  # [pos]: sigmoid of the shared expert's gate (Qwen2-MoE), else None


@dataclass
class Frozen:
    """The quantities one normal forward pass fixes; ``[layer, pos, ...]`` unless noted."""

    embedding: torch.Tensor  # [pos, d_model]: the residual entering layer 0 (token + position embedding)
    residual: torch.Tensor  # [layer, pos, d_model]: the true residual leaving each layer
    pattern: torch.Tensor  # [layer, head, q_pos, k_pos]: attention probabilities
    input_scale: torch.Tensor | None  # [layer, pos]: 1/rms (or 1/std) of the input norm; None without one (OLMo 2)
    mlp_scale: torch.Tensor | None  # [layer, pos]: same for the norm before the MLP
    attn_post_scale: torch.Tensor | None  # [layer, pos]: post-attention norm (Gemma), else None
    mlp_post_scale: torch.Tensor | None  # [layer, pos]: post-MLP norm (Gemma), else None
    mlp_gate: torch.Tensor | list  # [layer, pos, d_mlp]: act(gate) (GLU) or act(z)/z (plain); a list per layer
    # (None for mixture-of-experts layers) when the model routes some layers
    final_scale: torch.Tensor  # [pos]: scale of the final norm
    final_normed: torch.Tensor  # [pos, d_model]: the final norm's output (what the unembedding reads)
    logits: torch.Tensor  # [pos, vocab]: the model's final logits (softcapped where the model caps)
    trace: Trace  # the same pass as a trace: top-k, head-summed attention (no per-head maps)
    routed: list[Routed | None] | None = None  # per layer, for models with mixture-of-experts layers


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
    gates = [None if g is None else g[0] for g in taps.per_layer("gate")]
    routed = _routed(model, taps) if any(r is not None for r in taps.per_layer("routing")) else None
    return Frozen(
        embedding=captured.summary("input_embedding")[1][0, 0], residual=captured.summary("residual")[1][:, 0],
        pattern=captured.attention_heads[:, 0], input_scale=first(taps.stacked("input")),
        mlp_scale=first(taps.stacked("mlp")), attn_post_scale=first(taps.stacked("attn_post")),
        mlp_post_scale=first(taps.stacked("mlp_post")),
        mlp_gate=torch.stack(gates) if routed is None else gates,
        final_scale=taps.final_scale[0], final_normed=taps.final_normed[0],
        logits=captured.logits[0].float(), trace=trace, routed=routed,
    )


def _routed(model, taps) -> list[Routed | None]:
    """Each MoE layer's routing with the chosen experts' gates, act(x W_gate), from the experts' own input."""
    blocks = get_path(model.hf, model.spec.layers)
    out = []
    for layer, routing in enumerate(taps.per_layer("routing")):
        if routing is None:
            out.append(None)
            continue
        experts = get_path(blocks[layer], model.spec.moe_experts)
        gate_up, down, gate_up_bias, _ = expert_weights(experts)
        d_expert = down.shape[2]
        z = routing.inputs.new_zeros(*routing.index.shape, d_expert)  # [pos, k, d_expert]
        for e in routing.index.unique().tolist():
            if e >= gate_up.shape[0]:  # an index past the last expert marks a dropped token: no expert runs
                continue
            rows, slots = (routing.index == e).nonzero(as_tuple=True)
            z[rows, slots] = routing.inputs[rows] @ gate_up[e, :d_expert].float().T
            if gate_up_bias is not None:
                z[rows, slots] += gate_up_bias[e, :d_expert].float()
        shared_gate, shared_scale = taps.per_layer("shared_gate")[layer], taps.per_layer("shared_scale")[layer]
        out.append(Routed(routing.index, routing.weight, experts.act_fn(z).float(),
                          None if shared_gate is None else shared_gate.reshape(-1, shared_gate.shape[-1]),
                          shared_scale))
    return out
