"""Edge importances of one layer for information-flow routes (Ferrando & Voita, 2024): pure tensor math.

A sum ``y = sum_k c_k`` (a residual update) gives each part the proximity
``max(0, |y|_1 - |y - c_k|_1)``, normalised over the parts of that sum. The
attention parts are ``z[h, i<-j] = A[h, i, j] * (s_i * a[h, j] + c)``: the head's
output for source ``j`` weighted by the frozen pattern (``s``, ``c``: a post-norm's
scale and bias share, Gemma). Query rows go in chunks, so the ``[head, rows, key,
d_model]`` block stays within a byte budget and memory is O(H * T^2), not O(H * T^2 * d).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lmxray.flow.maps import LayerMaps

# Bound on one [head, rows, key, d_model] fp32 block: cache-sized on CPU (one 5 MiB row at T = 256 ran 3x faster
# than 64 MiB blocks, benchmarks/routes.py), large on GPUs where each block costs a few kernel launches.
CPU_CHUNK_BYTES = 4 * 2**20
GPU_CHUNK_BYTES = 256 * 2**20


def default_chunk_bytes(device: torch.device) -> int:
    return CPU_CHUNK_BYTES if device.type == "cpu" else GPU_CHUNK_BYTES


@dataclass
class HeadVectors:
    """What each head writes for each source before the pattern weighs it: ``z[h,i<-j] = A[h,i,j] (s_i a[h,j] + c)``."""

    a: torch.Tensor  # [head, source, d_model]: W_O^h (W_V^h norm(x_j) + b_V^h) + b_O / H, post-norm weight applied
    scale: torch.Tensor | None  # [query]: the post-norm's frozen scale s_i (Gemma), None when there is none
    shift: torch.Tensor | None  # [d_model]: the post-norm's bias share, beta / H, None when zero


@dataclass
class LayerImportance:
    """Normalised importances of the parts of one layer's sums, ``[...]`` per query position ``i``."""

    heads: torch.Tensor  # [head, query, key]: z[h, i<-j] in the attention sum (zero for j > i)
    residual: torch.Tensor  # [query]: the residual x_i in the attention sum (parallel: in the layer's one sum)
    mlp: torch.Tensor  # [query]: the MLP output in the MLP sum (parallel: in the layer's one sum)
    mlp_residual: torch.Tensor | None  # [query]: the mid residual in the MLP sum; None when parallel
    error: float  # max relative |sum of the parts - true sum| over both sums and every position


def _centre(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(-1, keepdim=True)


def head_vectors(x: torch.Tensor, input_scale: torch.Tensor, maps: LayerMaps,
                 post_scale: torch.Tensor | None) -> HeadVectors:
    """Per-head, per-source output vectors of one attention layer from its input residual ``x`` [pos, d_model].

    The output bias is shared evenly by the heads (each head's pattern row sums to 1, so every
    source carries ``A[h,i,j] b_O / H``); a post-norm (frozen scale ``post_scale`` [pos]) is linear.
    """
    n_heads, n_kv = maps.n_heads, maps.n_kv_heads
    normed = (_centre(x) if maps.centre else x) * input_scale[:, None]
    v = normed @ maps.value.weight.T.float()
    if maps.value.bias is not None:
        v = v + maps.value.bias.float()
    d_model = maps.out.weight.shape[0]
    v = v.view(x.shape[0], n_kv, -1).repeat_interleave(n_heads // n_kv, dim=1)  # [source, head, d_head]
    w_o = maps.out.weight.float().view(d_model, n_heads, -1)  # [d_model, head, d_head]
    a = torch.einsum("shk,dhk->hsd", v, w_o)  # [head, source, d_model]
    if maps.out.bias is not None:
        a = a + maps.out.bias.float() / n_heads
    shift = None
    if maps.attn_post is not None:
        post = maps.attn_post
        a = (_centre(a) if post.centre else a) * post.weight.float()
        shift = None if post.bias is None else post.bias.float() / n_heads
    return HeadVectors(a, post_scale if maps.attn_post is not None else None, shift)


def attention_sum(pattern: torch.Tensor, vec: HeadVectors) -> torch.Tensor:
    """``sum over heads and sources of z[h, i<-j]`` [query, d_model]: what the parts add up to."""
    out = torch.einsum("hij,hjd->id", pattern, vec.a)
    if vec.scale is not None:
        out = out * vec.scale[:, None]
    if vec.shift is not None:
        out = out + pattern.sum((0, 2))[:, None] * vec.shift
    return out


def _proximity(y_l1: torch.Tensor, distance_l1: torch.Tensor) -> torch.Tensor:
    return (y_l1 - distance_l1).clamp_min(0)


def _head_proximities(y: torch.Tensor, pattern: torch.Tensor, vec: HeadVectors, chunk_bytes: int) -> torch.Tensor:
    """Unnormalised proximity of every ``z[h, i<-j]`` to ``y_i``, [head, query, key], query rows in chunks."""
    n_heads, n_tokens, d_model = vec.a.shape
    out = torch.zeros(n_heads, n_tokens, n_tokens, device=y.device)
    y_l1 = y.abs().sum(-1)
    rows = max(1, chunk_bytes // (4 * n_heads * n_tokens * d_model))
    for start in range(0, n_tokens, rows):
        stop = min(start + rows, n_tokens)  # keys 0..stop-1: the causal half of these rows
        weights = pattern[:, start:stop, :stop, None]  # [head, rows, key, 1]
        scaled = weights if vec.scale is None else weights * vec.scale[None, start:stop, None, None]
        block = torch.addcmul(y[None, start:stop, None, :], scaled, vec.a[:, None, :stop], value=-1)  # y_i - z
        if vec.shift is not None:
            block.addcmul_(weights, vec.shift, value=-1)
        out[:, start:stop, :stop] = _proximity(y_l1[None, start:stop, None], block.abs_().sum(-1))
        del block
    return out


def _normalise(parts: list[torch.Tensor],
               heads: torch.Tensor | None = None) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Divide each part's proximity [query] (and the heads' [head, query, key]) by their sum per query."""
    total = sum(parts) + (heads.sum((0, 2)) if heads is not None else 0)
    inv = torch.where(total > 0, 1.0 / total.clamp_min(torch.finfo(total.dtype).tiny), 0.0)
    return [p * inv for p in parts], None if heads is None else heads * inv[None, :, None]


def _relative(recon: torch.Tensor, true: torch.Tensor) -> float:
    return float(((recon - true).norm(dim=-1) / true.norm(dim=-1).clamp_min(1e-30)).max())


@torch.no_grad()
def layer_importance(x: torch.Tensor, attn_out: torch.Tensor, mlp_out: torch.Tensor, post: torch.Tensor,
                     pattern: torch.Tensor, vec: HeadVectors, parallel: bool,
                     chunk_bytes: int | None = None) -> LayerImportance:
    """Importances of one layer's parts from the true residuals ``x`` (in), ``post`` (out) and the true
    sublayer outputs ``attn_out``, ``mlp_out`` [pos, d_model]; ``pattern`` [head, query, key].

    Sequential: ``mid = x + attn_out`` has parts ``x`` and the ``z``; ``post = mid + mlp_out`` has parts
    ``mid`` and ``mlp_out``. Parallel (GPT-NeoX): ``post = x + sum z + mlp_out`` is one sum.
    ``chunk_bytes``: bound on one block (None: ``default_chunk_bytes`` of the device).
    """
    chunk_bytes = chunk_bytes or default_chunk_bytes(x.device)
    y = post if parallel else x + attn_out
    y_l1 = y.abs().sum(-1)
    heads = _head_proximities(y, pattern, vec, chunk_bytes)
    recon = x + attention_sum(pattern, vec)
    if parallel:
        (residual, mlp), heads = _normalise([_proximity(y_l1, (y - x).abs().sum(-1)),
                                             _proximity(y_l1, (y - mlp_out).abs().sum(-1))], heads)
        return LayerImportance(heads, residual, mlp, None, _relative(recon + mlp_out, post))
    (residual,), heads = _normalise([_proximity(y_l1, (y - x).abs().sum(-1))], heads)
    post_l1 = post.abs().sum(-1)
    mlp, mid = _normalise([_proximity(post_l1, (post - mlp_out).abs().sum(-1)),
                           _proximity(post_l1, (post - y).abs().sum(-1))])[0]
    error = max(_relative(recon, y), _relative(y + mlp_out, post))
    return LayerImportance(heads, residual, mlp, mid, error)
