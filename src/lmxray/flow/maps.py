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
class LayerMaps:
    """One decoder layer as linear maps (given the frozen pattern, scales and gate)."""

    value: Affine  # [kv_heads * d_head, d_model], input norm folded in
    out: Affine  # [d_model, heads * d_head]
    attn_post: Norm | None
    up: Affine  # [d_mlp, d_model], MLP norm folded in
    down: Affine  # [d_model, d_mlp]
    mlp_post: Norm | None
    centre: bool  # pre-norms subtract the mean (LayerNorm)
    parallel: bool  # attention and MLP both read the layer's input (GPT-NeoX)
    n_heads: int
    n_kv_heads: int


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
    out = affine_of(get_path(block, spec.out_proj), dtype)
    down = affine_of(get_path(block, spec.mlp_down), dtype)
    d_head = out.weight.shape[1] // info.n_heads
    value = _rows(affine_of(get_path(block, spec.value_proj), dtype), spec.value_rows,
                  info.n_kv_heads * d_head, info.n_heads)
    up = _rows(affine_of(get_path(block, spec.mlp_up), dtype), spec.up_rows, down.weight.shape[1], info.n_heads)
    post = lambda path: None if path is None else norm_of(get_path(block, path), spec, dtype)  # noqa: E731
    return LayerMaps(
        value=fold(norm_of(get_path(block, spec.input_norm), spec, dtype), value),
        out=out, attn_post=post(spec.attn_post_norm),
        up=fold(norm_of(get_path(block, spec.mlp_norm), spec, dtype), up),
        down=down, mlp_post=post(spec.mlp_post_norm),
        centre=spec.norm_kind == "layer", parallel=spec.uses_parallel_residual(model.hf.config), n_heads=info.n_heads, n_kv_heads=info.n_kv_heads,
    )
