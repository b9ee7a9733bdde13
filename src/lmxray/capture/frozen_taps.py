"""Hooks that keep what one forward pass fixes for the residual decomposition: norm scales, MLP gates, the routing
of mixture-of-experts layers, and the final norm.

With these frozen, each layer is a linear map of the residual stream (see
lmxray.flow). Registered by the recorder with its other hooks when the plan sets
``frozen``; everything is fp32, ``[layer, batch, pos, ...]`` once stacked.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass
class Routing:
    """What an experts module received in one layer: its input and the router's exact top-k choice."""

    inputs: torch.Tensor  # [batch * pos, d_model]: the (normed) tokens the experts read
    index: torch.Tensor  # [batch * pos, k]: the chosen experts
    weight: torch.Tensor  # [batch * pos, k]: their routing weights, as the experts module scales by them


class FrozenTaps:
    """Per-layer slots for norm scales, gates and routing, and the final norm's scale and output."""

    def __init__(self, hf_model, spec: ArchSpec, blocks: list):
        self.hf_model, self.spec, self.blocks = hf_model, spec, blocks
        names = NORMS + ("gate", "routing", "shared_gate", "shared_scale")
        self.slots: dict[str, list] = {k: [None] * len(blocks) for k in names}
        self.final_scale: torch.Tensor | None = None  # [batch, pos]
        self.final_normed: torch.Tensor | None = None  # [batch, pos, d_model]

    def register(self) -> list:
        """Register the hooks; returns their handles (the recorder removes them)."""
        spec = self.spec
        dense = [b for b in self.blocks if not spec.is_moe(b)]
        acts = [get_path(b, spec.mlp_act) for b in dense]
        if len({id(a) for a in acts}) != len(acts):
            raise LmxrayError("the MLP activation module is shared between layers",
                              "lmxray flow needs one activation module per layer")
        paths = dict(zip(NORMS, (spec.input_norm, spec.mlp_norm, spec.attn_post_norm, spec.mlp_post_norm)))
        handles = [get_path(self.hf_model, spec.final_norm).register_forward_hook(self._final_hook)]
        for i, block in enumerate(self.blocks):
            if spec.is_moe(block):
                handles += self._register_moe(i, block)
            else:
                handles.append(get_path(block, spec.mlp_act).register_forward_hook(self._gate_hook("gate", i)))
            for name, path in paths.items():
                if path is not None:
                    module = get_path(block, path)
                    handles.append(module.register_forward_hook(self._scale_hook(name, i, module)))
        return handles

    def _register_moe(self, layer: int, block) -> list:
        """The experts' input and top-k routing; a shared expert's gate and its sigmoid scale."""
        spec = self.spec
        experts = get_path(block, spec.moe_experts)
        handles = [experts.register_forward_pre_hook(self._routing_hook(layer), with_kwargs=True)]
        if spec.moe_shared is not None:
            act = get_path(block, f"{spec.moe_shared}.act_fn")
            handles.append(act.register_forward_hook(self._gate_hook("shared_gate", layer)))
        if spec.moe_shared_gate is not None:
            gate = get_path(block, spec.moe_shared_gate)
            handles.append(gate.register_forward_hook(self._shared_scale_hook(layer)))
        return handles

    def stacked(self, name: str) -> torch.Tensor | None:
        """``[layer, batch, pos, ...]`` for one slot name, None when the model has no such norm."""
        values = self.slots[name]
        return None if values[0] is None else torch.stack(values)

    def per_layer(self, name: str) -> list:
        """One slot's values layer by layer (None where a layer has none: a gate in an MoE layer)."""
        return list(self.slots[name])

    def _scale_hook(self, name: str, layer: int, module):
        eps = float(getattr(module, self.spec.norm_eps_attr))

        def hook(mod, args, output):
            self.slots[name][layer] = norm_scale(args[0], self.spec.norm_kind, eps)
        return hook

    def _gate_hook(self, name: str, layer: int):
        glu = self.spec.mlp_kind == "glu" or name == "shared_gate"

        def hook(mod, args, output):
            act = output.float()
            if glu:
                self.slots[name][layer] = act
            else:  # freeze act(z)/z so the plain MLP is linear in z; z == 0 gives act(0) == 0 whatever the ratio
                z = args[0].float()
                self.slots[name][layer] = torch.where(z != 0, act / torch.where(z != 0, z, 1.0), 0.0)
        return hook

    def _routing_hook(self, layer: int):
        names = ("hidden_states", "top_k_index", "top_k_weights")  # the experts interface's forward arguments

        def hook(mod, args, kwargs):
            inputs, index, weight = list(args[:3]) + [kwargs[k] for k in names[len(args[:3]):]]
            self.slots["routing"][layer] = Routing(inputs.detach().float(), index.detach(), weight.detach().float())
        return hook

    def _shared_scale_hook(self, layer: int):
        def hook(mod, args, output):
            self.slots["shared_scale"][layer] = torch.sigmoid(output.float()).squeeze(-1)
        return hook

    def _final_hook(self, mod, args, output):
        eps = float(getattr(mod, self.spec.norm_eps_attr))
        self.final_scale = norm_scale(args[0], self.spec.norm_kind, eps)
        self.final_normed = output.float()
