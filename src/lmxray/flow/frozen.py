"""One forward pass that fixes everything non-linear: attention patterns, norm scales, MLP gates.

With these frozen, each layer is a linear map of the residual stream, so the
stream can be split exactly into per-source contributions (see decompose.py).
Every tensor here is fp32, on the model's device, for one prompt (no padding).
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from lmxray.capture.plan import CapturePlan
from lmxray.capture.run import Batch, build_traces, capture_batch
from lmxray.errors import LmxrayError
from lmxray.models.adapters import get_path
from lmxray.trace.types import Trace

# What the capture keeps: per-head patterns for the decomposition, the head-summed map for the trace file.
_PLAN = CapturePlan(attention=True, per_head=True, row_stats=False, components=(), lens=False)


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


def norm_scale(x: torch.Tensor, kind: str, eps: float) -> torch.Tensor:
    """The per-position factor a norm divides by, inverted: 1/sqrt(mean(x^2)+eps) or 1/sqrt(var(x)+eps)."""
    x = x.float()
    if kind == "layer":
        x = x - x.mean(-1, keepdim=True)
    return torch.rsqrt(x.pow(2).mean(-1) + eps)


class _Collector:
    """Forward hooks that fill per-layer slots; everything is reduced to what the decomposition needs."""

    def __init__(self, model):
        self.model, self.spec = model, model.spec
        self.blocks = list(get_path(model.hf, self.spec.layers))
        n = len(self.blocks)
        self.slots: dict[str, list] = {k: [None] * n for k in
                                       ("residual", "input", "mlp", "attn_post", "mlp_post", "gate")}
        self.embedding = self.final_scale = self.final_normed = None

    def _scale_hook(self, name: str, layer: int, module):
        eps = float(getattr(module, self.spec.norm_eps_attr))

        def hook(mod, args, output):
            self.slots[name][layer] = norm_scale(args[0][0], self.spec.norm_kind, eps)
        return hook

    def _gate_hook(self, layer: int):
        glu = self.spec.mlp_kind == "glu"

        def hook(mod, args, output):
            act = output[0].float()
            if glu:
                self.slots["gate"][layer] = act
            else:  # freeze act(z)/z so the plain MLP is linear in z; z == 0 gives act(0) == 0 whatever the ratio
                z = args[0][0].float()
                self.slots["gate"][layer] = torch.where(z != 0, act / torch.where(z != 0, z, 1.0), 0.0)
        return hook

    def _residual_hook(self, layer: int):
        def hook(mod, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            self.slots["residual"][layer] = hidden[0].float()
        return hook

    def _embedding_hook(self, mod, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        self.embedding = hidden[0].float()

    def _final_hook(self, mod, args, output):
        eps = float(getattr(mod, self.spec.norm_eps_attr))
        self.final_scale = norm_scale(args[0][0], self.spec.norm_kind, eps)
        self.final_normed = output[0].float()

    @contextmanager
    def hooks(self):
        spec, handles = self.spec, []
        acts = [get_path(b, spec.mlp_act) for b in self.blocks]
        if len({id(a) for a in acts}) != len(acts):
            raise LmxrayError("the MLP activation module is shared between layers",
                              "lmxray flow needs one activation module per layer")
        try:
            handles.append(self.blocks[0].register_forward_pre_hook(self._embedding_hook, with_kwargs=True))
            handles.append(get_path(self.model.hf, spec.final_norm).register_forward_hook(self._final_hook))
            for i, block in enumerate(self.blocks):
                handles.append(block.register_forward_hook(self._residual_hook(i)))
                handles.append(acts[i].register_forward_hook(self._gate_hook(i)))
                norms = {"input": spec.input_norm, "mlp": spec.mlp_norm,
                         "attn_post": spec.attn_post_norm, "mlp_post": spec.mlp_post_norm}
                for name, path in norms.items():
                    if path is not None:
                        module = get_path(block, path)
                        handles.append(module.register_forward_hook(self._scale_hook(name, i, module)))
            yield self
        finally:
            for h in handles:
                h.remove()

    def stacked(self, name: str) -> torch.Tensor | None:
        values = self.slots[name]
        return None if values[0] is None else torch.stack(values)


@torch.no_grad()
def freeze(model, prompt: str, position: int) -> Frozen:
    """Run ``prompt`` once through ``model`` and keep the frozen quantities (plus a Trace of the same pass)."""
    ids = model.encode(prompt)
    pad_id = model.tokenizer.pad_token_id
    batch = Batch.from_ids([ids], pad_id if pad_id is not None else 0, model.device)
    collector = _Collector(model)
    with collector.hooks():
        recorder, logits = capture_batch(model, batch, _PLAN, [list(range(len(ids)))])
    pattern = recorder.attention_heads[0]
    recorder.attention_heads = None  # the trace keeps the head-summed map only
    summed_plan = dataclasses.replace(_PLAN, per_head=False)
    trace = build_traces(model, [prompt], [ids], batch, summed_plan, recorder, logits, [position], [{}])[0]
    c = collector
    return Frozen(
        embedding=c.embedding, residual=c.stacked("residual"), pattern=pattern,
        input_scale=c.stacked("input"), mlp_scale=c.stacked("mlp"),
        attn_post_scale=c.stacked("attn_post"), mlp_post_scale=c.stacked("mlp_post"),
        mlp_gate=c.stacked("gate"), final_scale=c.final_scale, final_normed=c.final_normed,
        logits=logits[0].float(), trace=trace,
    )
