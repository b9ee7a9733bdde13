"""The linear maps of one layer, read from the weights as fp32 ``[out, in]`` matrices.

A pre-norm's weight (and LayerNorm bias) is folded into the projection that
follows it, so a source's normed contribution ``scale * centre(c)`` goes
through one matmul. Post-norms (Gemma) stay explicit: they act on a sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lmxray.errors import LmxrayError
from lmxray.adapters import ArchSpec, get_path


@dataclass
class Affine:
    """``y = x @ weight.T + bias``; ``bias`` (None when zero) goes to the bias source only."""

    weight: torch.Tensor  # [out, in]
    bias: torch.Tensor | None  # [out]


@dataclass
class Norm:
    """A norm's affine part after the frozen scale: ``(offset + w) * centre(x) * scale + b``."""

    weight: torch.Tensor  # [d_model], offset already added
    bias: torch.Tensor | None
    centre: bool  # LayerNorm subtracts the mean (a linear map, applied per source)


@dataclass
class Experts:
    """A mixture-of-experts MLP as linear maps: each expert's up and down projection (given its frozen gate)."""

    up: list[Affine]  # per expert [d_expert, d_model], MLP norm folded in
    down: list[Affine]  # per expert [d_model, d_expert]
    shared_up: Affine | None  # a shared expert every token goes through (MLP norm folded in), else None
    shared_down: Affine | None


@dataclass
class LayerMaps:
    """One decoder layer as linear maps (given the frozen pattern, scales, gates and routing)."""

    value: Affine  # [kv_heads * d_head, d_model], input norm folded in
    out: Affine  # [d_model, heads * d_head]
    attn_post: Norm | None
    up: Affine | None  # [d_mlp, d_model], MLP norm folded in; None in a mixture-of-experts layer
    down: Affine | None  # [d_model, d_mlp]
    mlp_post: Norm | None
    centre: bool  # pre-norms subtract the mean (LayerNorm)
    parallel: bool  # attention and MLP both read the layer's input (GPT-NeoX)
    n_heads: int
    n_kv_heads: int
    experts: Experts | None = None  # the layer's experts when it routes its MLP


def affine_of(module, dtype=torch.float32) -> Affine:
    """Weight ``[out, in]`` and bias of an ``nn.Linear`` or a GPT-2 ``Conv1D`` (stored ``[in, out]``)."""
    from transformers.pytorch_utils import Conv1D

    weight = module.weight.detach().to(dtype)
    if isinstance(module, Conv1D):
        weight = weight.T
    bias = getattr(module, "bias", None)
    return Affine(weight.contiguous(), None if bias is None else bias.detach().to(dtype))


def norm_of(module, spec: ArchSpec, dtype=torch.float32) -> Norm:
    weight = module.weight.detach().to(dtype) + spec.norm_weight_offset
    bias = getattr(module, "bias", None)
    return Norm(weight, None if bias is None else bias.detach().to(dtype), spec.norm_kind == "layer")


def fold(norm: Norm, proj: Affine) -> Affine:
    """``proj(norm_affine(x))`` as one map: ``W diag(w)`` and bias ``W b + b_proj``."""
    weight = proj.weight * norm.weight[None, :]
    bias = proj.bias
    if norm.bias is not None:
        shifted = proj.weight @ norm.bias
        bias = shifted if bias is None else bias + shifted
    return Affine(weight.contiguous(), bias)


def _rows(affine: Affine, which: str, width: int, n_heads: int) -> Affine:
    """Select the rows of a fused projection: all, the last ``width``, or V of per-head [q|k|v] (NeoX)."""
    w, b = affine.weight, affine.bias
    if which == "all":
        if w.shape[0] != width:
            raise LmxrayError(f"a projection has {w.shape[0]} rows where the spec expects {width}", "fix the adapter")
        return affine
    if which == "last":
        return Affine(w[-width:].contiguous(), None if b is None else b[-width:].contiguous())
    if which == "per_head_last":
        d_head = width // n_heads
        sel = torch.arange(width, device=w.device).view(n_heads, d_head) + \
            torch.arange(n_heads, device=w.device)[:, None] * 2 * d_head + 2 * d_head
        sel = sel.reshape(-1)
        return Affine(w[sel].contiguous(), None if b is None else b[sel].contiguous())
    raise LmxrayError(f"unknown row selection {which!r} in the architecture spec", "fix the adapter")


def layer_maps(model, layer: int, dtype=torch.float32) -> LayerMaps:
    """Read layer ``layer``'s linear maps from the model's weights."""
    spec, info = model.spec, model.info
    block = get_path(model.hf, spec.layers)[layer]
    scale = residual_multiplier(model)
    out = _scaled(affine_of(get_path(block, spec.out_proj), dtype), scale)
    d_head = out.weight.shape[1] // info.n_heads
    n_kv = getattr(get_path(block, spec.attention), spec.kv_heads_attr) if spec.kv_heads_attr else info.n_kv_heads
    value = _rows(affine_of(get_path(block, spec.value_proj), dtype), spec.value_rows, n_kv * d_head, info.n_heads)
    post = lambda path: None if path is None else norm_of(get_path(block, path), spec, dtype)  # noqa: E731
    pre = lambda path, proj: proj if path is None else fold(norm_of(get_path(block, path), spec, dtype), proj)  # noqa: E731
    up = down = experts = None
    if spec.is_moe(block):
        experts = _experts(block, spec, dtype, lambda proj: pre(spec.mlp_norm, proj), scale)
    else:
        down = _scaled(affine_of(get_path(block, spec.mlp_down), dtype), scale)
        up = pre(spec.mlp_norm, _rows(affine_of(get_path(block, spec.mlp_up), dtype), spec.up_rows,
                                      down.weight.shape[1], info.n_heads))
    return LayerMaps(
        value=pre(spec.input_norm, value), out=out, attn_post=post(spec.attn_post_norm), up=up, down=down,
        mlp_post=post(spec.mlp_post_norm), centre=spec.norm_kind == "layer",
        parallel=spec.uses_parallel_residual(model.hf.config), n_heads=info.n_heads, n_kv_heads=n_kv,
        experts=experts,
    )


def residual_multiplier(model) -> float:
    """The factor the model scales attention and MLP outputs by before adding them (Granite), else 1."""
    attr = model.spec.residual_multiplier_attr
    return float(getattr(model.hf.config.get_text_config(), attr)) if attr else 1.0


def _scaled(affine: Affine, factor: float) -> Affine:
    if factor == 1.0:
        return affine
    return Affine(affine.weight * factor, None if affine.bias is None else affine.bias * factor)


def expert_weights(experts) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(gate|up [E, 2 * d_expert, d_model] with gate rows first, down [E, d_model, d_expert], their biases or None)
    of an experts module of transformers' experts interface, whatever its storage layout; a gating other than
    ``act(gate) * up`` is refused (flow needs the MLP linear in its input once the gate is frozen)."""
    from transformers.integrations.moe import _default_apply_gate

    name = type(experts).__name__
    if not getattr(experts, "has_gate", False) or getattr(experts, "has_post_expert_norm", False) \
            or type(experts)._apply_gate is not _default_apply_gate:
        raise LmxrayError(f"the experts of this model ({name}) are not gated as act(gate) * up",
                          "flow decomposes mixtures of GLU experts only; trace the model instead")
    gate_up, down = experts.gate_up_proj.detach(), experts.down_proj.detach()
    if getattr(experts, "is_transposed", False):
        gate_up, down = gate_up.transpose(1, 2), down.transpose(1, 2)
    gate_up_bias = getattr(experts, "gate_up_proj_bias", None) if experts.has_bias else None
    down_bias = getattr(experts, "down_proj_bias", None) if experts.has_bias else None
    if not getattr(experts, "is_concatenated", True):  # interleaved [g0, u0, g1, u1, ...]
        order = torch.cat([torch.arange(0, gate_up.shape[1], 2), torch.arange(1, gate_up.shape[1], 2)])
        gate_up = gate_up[:, order.to(gate_up.device)]
        gate_up_bias = None if gate_up_bias is None else gate_up_bias[:, order.to(gate_up.device)]
    return gate_up, down, gate_up_bias, down_bias


def _experts(block, spec: ArchSpec, dtype, fold_norm, scale: float) -> Experts:
    """Each expert's up and down maps (and a shared expert's), the MLP norm folded into the up maps."""
    gate_up, down, gate_up_bias, down_bias = expert_weights(get_path(block, spec.moe_experts))
    d_expert = down.shape[2]
    ups, downs = [], []
    for e in range(gate_up.shape[0]):
        up_bias = None if gate_up_bias is None else gate_up_bias[e, d_expert:].to(dtype)
        ups.append(fold_norm(Affine(gate_up[e, d_expert:].to(dtype).contiguous(), up_bias)))
        downs.append(_scaled(Affine(down[e].to(dtype).contiguous(),
                                    None if down_bias is None else down_bias[e].to(dtype)), scale))
    shared_up = shared_down = None
    if spec.moe_shared is not None:
        shared_up = fold_norm(affine_of(get_path(block, f"{spec.moe_shared}.up_proj"), dtype))
        shared_down = _scaled(affine_of(get_path(block, f"{spec.moe_shared}.down_proj"), dtype), scale)
    return Experts(ups, downs, shared_up, shared_down)
