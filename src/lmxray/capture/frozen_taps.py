"""Hooks that keep what one forward pass fixes for the residual decomposition: norm scales, MLP gates, final norm.

With these frozen, each layer is a linear map of the residual stream (see
lmxray.flow). Registered by the recorder with its other hooks when the plan sets
``frozen``; everything is fp32, ``[layer, batch, pos, ...]`` once stacked.
"""

from __future__ import annotations

import torch

from lmxray.adapters import ArchSpec, get_path
from lmxray.errors import LmxrayError

NORMS = ("input", "mlp", "attn_post", "mlp_post")


def norm_scale(x: torch.Tensor, kind: str, eps: float) -> torch.Tensor:
    """The per-position factor a norm divides by, inverted: 1/sqrt(mean(x^2)+eps) or 1/sqrt(var(x)+eps)."""
    x = x.float()
    if kind == "layer":
        x = x - x.mean(-1, keepdim=True)
    return torch.rsqrt(x.pow(2).mean(-1) + eps)


class FrozenTaps:
    """Per-layer slots for norm scales and gates, and the final norm's scale and output."""

    def __init__(self, hf_model, spec: ArchSpec, blocks: list):
        self.hf_model, self.spec, self.blocks = hf_model, spec, blocks
        self.slots: dict[str, list] = {k: [None] * len(blocks) for k in NORMS + ("gate",)}
        self.final_scale: torch.Tensor | None = None  # [batch, pos]
        self.final_normed: torch.Tensor | None = None  # [batch, pos, d_model]

    def register(self) -> list:
        """Register the hooks; returns their handles (the recorder removes them)."""
        spec = self.spec
        acts = [get_path(b, spec.mlp_act) for b in self.blocks]
        if len({id(a) for a in acts}) != len(acts):
            raise LmxrayError("the MLP activation module is shared between layers",
                              "lmxray flow needs one activation module per layer")
        paths = dict(zip(NORMS, (spec.input_norm, spec.mlp_norm, spec.attn_post_norm, spec.mlp_post_norm)))
        handles = [get_path(self.hf_model, spec.final_norm).register_forward_hook(self._final_hook)]
        for i, block in enumerate(self.blocks):
            handles.append(acts[i].register_forward_hook(self._gate_hook(i)))
            for name, path in paths.items():
                if path is not None:
                    module = get_path(block, path)
                    handles.append(module.register_forward_hook(self._scale_hook(name, i, module)))
        return handles

    def stacked(self, name: str) -> torch.Tensor | None:
        """``[layer, batch, pos, ...]`` for one slot name, None when the model has no such norm."""
        values = self.slots[name]
        return None if values[0] is None else torch.stack(values)

    def _scale_hook(self, name: str, layer: int, module):
        eps = float(getattr(module, self.spec.norm_eps_attr))

        def hook(mod, args, output):
            self.slots[name][layer] = norm_scale(args[0], self.spec.norm_kind, eps)
        return hook

    def _gate_hook(self, layer: int):
        glu = self.spec.mlp_kind == "glu"

        def hook(mod, args, output):
            act = output.float()
            if glu:
                self.slots["gate"][layer] = act
            else:  # freeze act(z)/z so the plain MLP is linear in z; z == 0 gives act(0) == 0 whatever the ratio
                z = args[0].float()
                self.slots["gate"][layer] = torch.where(z != 0, act / torch.where(z != 0, z, 1.0), 0.0)
        return hook

    def _final_hook(self, mod, args, output):
        eps = float(getattr(mod, self.spec.norm_eps_attr))
        self.final_scale = norm_scale(args[0], self.spec.norm_kind, eps)
        self.final_normed = output.float()
