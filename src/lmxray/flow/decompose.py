"""Exact per-source decomposition of the residual stream, layer by layer, with frozen non-linearities.

``C[(position, source)]`` is source ``source``'s contribution to the residual
at ``position``; at the embedding it is the token's own embedding on the
diagonal. Each layer maps it linearly (frozen norm scales, pattern and gate),
biases go to the bias source, so ``sum over sources == true residual``.
One layer's ``C`` (causal half) is held, updated in place, block by block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from lmxray.flow.frozen import Frozen, Routed
from lmxray.flow.layout import Block, Layout
from lmxray.flow.maps import Affine, Experts, LayerMaps, Norm

DEFAULT_BLOCK_ROWS = 8192  # rows (position, source pairs) per block: bounds the [rows, d_mlp] transient


@dataclass
class Decomposition:
    """Norms per ``[layer, position, group]`` (groups: sources or word groups, bias last) and the exactness check."""

    attention: torch.Tensor  # L2 norm of what attention added, through this group
    mlp: torch.Tensor  # L2 norm of what the MLP added
    total: torch.Tensor  # L2 norm of the group's whole contribution to the residual after the layer
    error: torch.Tensor  # [layer]: max over positions of |sum over sources - true residual| / |true residual|
    final: torch.Tensor  # [source, d_model]: contributions at the chosen position after the last layer (per source)


def _centre(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(-1, keepdim=True)


def _apply(x: torch.Tensor, affine: Affine, with_bias: bool) -> torch.Tensor:
    """``x @ W.T`` in W's dtype, back in fp32; the bias only for the bias source."""
    y = (x if x.dtype == affine.weight.dtype else x.to(affine.weight.dtype)) @ affine.weight.T
    y = y.float()
    if with_bias and affine.bias is not None:
        y += affine.bias.float()
    return y


def _post_norm(x: torch.Tensor, norm: Norm, scale: torch.Tensor, with_bias: bool) -> torch.Tensor:
    """A norm on an output (Gemma's post-norms), per source: centre, frozen scale, weight; bias to the bias source."""
    x = _centre(x) if norm.centre else x
    x = x * scale[:, None] * norm.weight.float()
    if with_bias and norm.bias is not None:
        x += norm.bias.float()
    return x


def _mix(v: torch.Tensor, pattern: torch.Tensor, block: Block, n_tokens: int, n_heads: int,
         n_kv: int) -> torch.Tensor:
    """Weight each source's values by the frozen pattern: ``z[p] = sum_j A[head, p, j] v[j]`` (GQA grouped).

    ``v`` [rows, kv_head * d_head] -> ``z`` [rows, head * d_head]. The block's sources are laid out
    densely over positions ``start..T-1`` (zeros before a source begins), so this is one matmul.
    """
    n_pos, n_src = n_tokens - block.start, block.stop - block.first
    d_head, group = v.shape[1] // n_kv, n_heads // n_kv
    dense = v.new_zeros(n_src * n_pos, v.shape[1])
    dense[block.dense_index] = v
    dense = dense.view(n_src, n_pos, n_kv, d_head).permute(2, 1, 0, 3).reshape(n_kv, 1, n_pos, n_src * d_head)
    a = pattern[:, block.start:, block.start:].reshape(n_kv, group, n_pos, n_pos)
    z = torch.matmul(a, dense)  # [kv_head, group, pos, source * d_head]
    z = z.view(n_kv, group, n_pos, n_src, d_head).permute(3, 2, 0, 1, 4).reshape(n_src * n_pos, n_heads * d_head)
    return z[block.dense_index]


def _normed(c: torch.Tensor, pos: torch.Tensor, maps: LayerMaps, scale: torch.Tensor | None,
            layer: int) -> torch.Tensor:
    """A pre-norm applied to each source, its scale frozen (its weight is folded into the next map); a layer
    without that norm (OLMo 2) reads the contributions as they are."""
    if scale is None:
        return c
    return (_centre(c) if maps.centre else c) * scale[layer][pos, None]


def _attention(c: torch.Tensor, pos: torch.Tensor, block: Block, maps: LayerMaps, frozen: Frozen, layer: int,
               n_tokens: int) -> torch.Tensor:
    """What attention adds at each row: norm (frozen scale), W_V, frozen pattern, W_O, post-norm."""
    v = _apply(_normed(c, pos, maps, frozen.input_scale, layer), maps.value, block.has_bias)
    z = _mix(v, frozen.pattern[layer], block, n_tokens, maps.n_heads, maps.n_kv_heads)
    out = _apply(z, maps.out, block.has_bias)
    if maps.attn_post is not None:
        out = _post_norm(out, maps.attn_post, frozen.attn_post_scale[layer][pos], block.has_bias)
    return out


def _mlp(c: torch.Tensor, pos: torch.Tensor, block: Block, maps: LayerMaps, frozen: Frozen,
         layer: int) -> torch.Tensor:
    """What the MLP adds at each row: norm (frozen scale), up-projection, frozen gate, down-projection, post-norm."""
    x = _normed(c, pos, maps, frozen.mlp_scale, layer)
    if maps.experts is not None:
        out = _experts(x, pos, block, maps.experts, frozen.routed[layer])
    else:
        hidden = _apply(x, maps.up, block.has_bias)
        hidden *= frozen.mlp_gate[layer][pos]
        out = _apply(hidden, maps.down, block.has_bias)
    if maps.mlp_post is not None:
        out = _post_norm(out, maps.mlp_post, frozen.mlp_post_scale[layer][pos], block.has_bias)
    return out


def _experts(x: torch.Tensor, pos: torch.Tensor, block: Block, experts: Experts, routed: Routed) -> torch.Tensor:
    """A mixture of experts at each row: every expert its position routed to, weighted by its frozen routing
    weight and gated by its frozen gate (top-k exact), plus the shared expert scaled by its frozen sigmoid."""
    out = x.new_zeros(x.shape[0], experts.down[0].weight.shape[0])
    chosen = routed.index[pos]  # [rows, k]
    for e in chosen.unique().tolist():
        if e >= len(experts.up):  # a dropped token: no expert
            continue
        rows, slots = (chosen == e).nonzero(as_tuple=True)
        at = pos[rows]
        hidden = _apply(x[rows], experts.up[e], block.has_bias) * routed.gate[at, slots]
        out.index_add_(0, rows, _apply(hidden, experts.down[e], block.has_bias) * routed.weight[at, slots, None])
    if experts.shared_up is not None:
        shared = _apply(_apply(x, experts.shared_up, block.has_bias) * routed.shared_gate[pos], experts.shared_down,
                        block.has_bias)
        out += shared if routed.shared_scale is None else shared * routed.shared_scale[pos, None]
    return out


def _reduce(out: torch.Tensor, vectors: torch.Tensor, block: Block, pos: torch.Tensor, n_tokens: int) -> None:
    """Write the L2 norm of each (position, group) sum of ``vectors`` into ``out`` [position, group]."""
    if block.n_groups == block.stop - block.first:  # one source per group: each row is its own sum
        out[pos, block.group_first + torch.div(block.group_index, n_tokens, rounding_mode="floor")] = \
            vectors.norm(dim=-1)
        return
    sums = vectors.new_zeros(block.n_groups * n_tokens, vectors.shape[1]).index_add_(0, block.group_index, vectors)
    out[:, block.group_first:block.group_first + block.n_groups] = sums.norm(dim=-1).view(block.n_groups, n_tokens).T


def relative_error(c: torch.Tensor, layout: Layout, true: torch.Tensor) -> torch.Tensor:
    """Max over positions of ``|sum over sources of c - true| / |true|`` (true: [position, d_model])."""
    summed = torch.zeros_like(true).index_add_(0, layout.position, c)
    return ((summed - true).norm(dim=-1) / true.norm(dim=-1).clamp_min(1e-30)).max()


@torch.no_grad()
def decompose(frozen: Frozen, layer_maps: Callable[[int], LayerMaps], position: int,
              groups: list[tuple[int, int]] | None = None, block_rows: int = DEFAULT_BLOCK_ROWS) -> Decomposition:
    """Propagate per-source contributions through every layer; ``groups``: consecutive token ranges ``[a, b)``.

    ``layer_maps(i)`` returns layer ``i``'s maps (read when needed, so one layer's weights are held at a time).
    """
    n_tokens, d_model = frozen.embedding.shape
    n_layers = frozen.residual.shape[0]
    device = frozen.embedding.device
    layout = Layout.for_tokens(n_tokens, device)
    groups = groups if groups is not None else [(s, s + 1) for s in range(n_tokens)]
    blocks = layout.blocks(groups, block_rows)
    shape = (n_layers, n_tokens, len(groups) + 1)
    norms = {k: torch.zeros(shape, device=device) for k in ("attention", "mlp", "total")}
    error = torch.zeros(n_layers, device=device)
    c = torch.zeros(layout.n_rows, d_model, device=device)  # [(position, source) rows, d_model]
    c[torch.tensor(layout.offset[:n_tokens], device=device)] = frozen.embedding  # own embedding on the diagonal
    for layer in range(n_layers):
        maps = layer_maps(layer)
        for block in blocks:
            cb, pos = c[block.rows], layout.position[block.rows]
            attn = _attention(cb, pos, block, maps, frozen, layer, n_tokens)
            _reduce(norms["attention"][layer], attn, block, pos, n_tokens)
            if maps.parallel:
                mlp = _mlp(cb, pos, block, maps, frozen, layer)
                cb += attn
            else:
                cb += attn
                mlp = _mlp(cb, pos, block, maps, frozen, layer)
            cb += mlp
            _reduce(norms["mlp"][layer], mlp, block, pos, n_tokens)
            _reduce(norms["total"][layer], cb, block, pos, n_tokens)
            del attn, mlp
        error[layer] = relative_error(c, layout, frozen.residual[layer])
    at = layout.position == position
    final = torch.zeros(layout.n_sources, d_model, device=device)
    final[layout.source[at]] = c[at]
    return Decomposition(error=error, final=final, **norms)
