"""The registered attention function: the model's attention output, plus exact fp32 probabilities for the recorder.

transformers calls it with post-RoPE, post-norm q/k/v, the scaling, the mask
(from the matching registered mask function) and the softcap. Without a
recorder it is the stock ``sdpa`` path, so logits do not change. With one, the
plan decides how the probabilities are made (docs/capture.md, "Two paths"):

* one pass: when the plan needs at least half of the query rows (or the model
  softcaps), fp32 probabilities are computed in blocks of rows, skipping keys
  the whole block masks, and produce the output themselves as eager attention
  does.
* SDPA plus recompute: when the plan needs few rows (a sweep keeps one), SDPA
  gives the output and only the needed rows are recomputed in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTN_IMPLEMENTATION = "lmxray"
RECORDER_ATTR = "_lmxray_recorder"  # set on each captured attention module for one forward pass (recorder.hooks)
DEFAULT_CHUNK_BYTES = 256 * 2**20  # bound on one fp32 probability block [batch, head, rows, keys]
CPU_CHUNK_BYTES = 2 * 2**20  # on CPU, blocks of about this size stay in a core's cache (4x faster at T = 1024)


def register() -> str:
    """Register the attention and mask functions under ``"lmxray"`` (idempotent)."""
    AttentionInterface.register(ATTN_IMPLEMENTATION, capture_attention)
    AttentionMaskInterface.register(ATTN_IMPLEMENTATION, sdpa_mask)
    return ATTN_IMPLEMENTATION


def capture_attention(module, query, key, value, attention_mask, scaling=None, softcap=None, **kwargs):
    """Attention forward: ``query`` [batch, head, q_pos, d_head]; ``key``/``value`` [batch, kv_head, k_pos, d_head].

    Some models pass more than the mask: ``s_aux``/``sinks`` (a sink logit per head that takes probability mass
    and adds no value) or ``position_bias`` (added to the scores), which always run the exact fp32 pass, or
    ``indices`` (the keys each query may attend to, sparse attention), folded into the mask.
    """
    recorder = module.__dict__.get(RECORDER_ATTR)  # not a kwarg: some layers do not pass their kwargs on
    extra = Extra.pop_from(kwargs)
    indices = kwargs.pop("indices", None)
    if indices is not None:  # sparse attention (DeepSeek-V3.2's indexer): only the chosen keys are attended to
        attention_mask = _only_chosen_keys(attention_mask, indices, query.shape[2], key.shape[2])
    if recorder is not None:
        recorder.check_shapes(module, query, key)
    if recorder is not None and not recorder.wants_probabilities(module):
        recorder.on_qkv(module, query, key, value)
        recorder = None  # a layer the plan does not capture runs as if untraced
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    if softcap is None and extra is None and (recorder is None or not recorder.one_pass(query.shape[2])):
        output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
        if recorder is not None:  # only the query rows the plan keeps
            chunk = rows_per_chunk(query, key, recorder.plan.chunk_bytes)
            for part in iter_probabilities(query, key, attention_mask, scaling, None, chunk, recorder.rows_index):
                recorder.on_probabilities(module, part.start, part.probs, query_rows=False, first_key=part.first_key)
    else:
        output = _one_pass(module, query, key, value, attention_mask, scaling, softcap, recorder, extra)
    if recorder is not None:
        recorder.on_qkv(module, query, key, value)
    return output, None


@dataclass
class Extra:
    """What a few models add to the scores besides the mask."""

    sinks: torch.Tensor | None  # sink logits: [head], or broadcastable to [batch, head, q_pos, 1]
    bias: torch.Tensor | None  # added to the scores, broadcastable to [batch, head, q_pos, k_pos]

    @classmethod
    def pop_from(cls, kwargs: dict) -> "Extra | None":
        sinks = kwargs.pop("s_aux", None)
        named = kwargs.pop("sinks", None)
        bias = kwargs.pop("position_bias", None)
        sinks = named if sinks is None else sinks
        return None if sinks is None and bias is None else cls(sinks, bias)


def _only_chosen_keys(attention_mask, indices, q_len: int, k_len: int):
    """The mask restricted to the keys ``indices`` [batch, q_pos, top-k] chooses (negative: no key)."""
    chosen = torch.zeros(*indices.shape[:2], k_len + 1, dtype=torch.bool, device=indices.device)
    chosen.scatter_(-1, torch.where(indices >= 0, indices.long(), k_len), True)
    chosen = chosen[:, None, :, :k_len]  # [batch, 1, q_pos, k_pos]
    if attention_mask is None:  # plain causal
        q_pos = torch.arange(q_len, device=indices.device)[:, None] + (k_len - q_len)
        return chosen & (torch.arange(k_len, device=indices.device)[None, :] <= q_pos)
    if attention_mask.dtype == torch.bool:
        return attention_mask[..., :k_len] & chosen
    return attention_mask[..., :k_len].masked_fill(~chosen, torch.finfo(attention_mask.dtype).min)


def _one_pass(module, query, key, value, attention_mask, scaling, softcap, recorder, extra=None):
    """Output [batch, q_pos, head, d_head] from fp32 probabilities of every row, handed to the recorder on the way."""
    chunk = rows_per_chunk(query, key, DEFAULT_CHUNK_BYTES if recorder is None else recorder.plan.chunk_bytes)
    plain = softcap is None and extra is None and (attention_mask is None or attention_mask.dtype == torch.bool)
    entropy = recorder is not None and recorder.wants_entropy and plain  # else the recorder sums entr(p)
    batch, n_heads, q_len, d_head = query.shape
    output = query.new_empty(batch, n_heads, q_len, value.shape[-1])
    for chunk_ in iter_probabilities(query, key, attention_mask, scaling, softcap, chunk, extra=extra):
        keys = slice(chunk_.first_key, chunk_.first_key + chunk_.probs.shape[-1])
        rows = slice(chunk_.start, chunk_.start + chunk_.probs.shape[2])
        if recorder is not None:
            ent = _entropy(chunk_, query[:, :, rows], key[:, :, keys], scaling) if entropy else None
            recorder.on_probabilities(module, chunk_.start, chunk_.probs, query_rows=True, entropy=ent,
                                      first_key=chunk_.first_key)
        output[:, :, rows] = _grouped_matmul(chunk_.probs.to(value.dtype), value[:, :, keys])
    return output.transpose(1, 2).contiguous()


def rows_per_chunk(query, key, chunk_bytes: int) -> int:
    """Query rows per probability block: within ``chunk_bytes``, and on CPU small enough to stay in cache."""
    per_row = query.shape[0] * query.shape[1] * key.shape[2] * 4
    bound = chunk_bytes if query.device.type != "cpu" else min(chunk_bytes, CPU_CHUNK_BYTES)
    return max(1, bound // per_row)


@dataclass
class Chunk:
    """fp32 probabilities of some query rows over the keys that any of them may attend to."""

    start: int  # offset of the first row in the row index
    probs: torch.Tensor  # [batch, head, rows, keys]: keys first_key.. (all others are masked for these rows)
    first_key: int
    log_norm: torch.Tensor  # [batch, head, rows]: max score + log of the softmax normaliser


def iter_probabilities(query, key, attention_mask, scaling, softcap, rows_per_chunk, row_index=None, extra=None):
    """Yield a ``Chunk`` of fp32 probabilities per block of query rows.

    ``row_index`` (sorted, on the device) limits the work to those query rows; None means all. Then keys
    that every row of a chunk masks (the causal future, outside a sliding window) are skipped.
    GQA is handled by grouping query heads per KV head (no repeated keys in memory); fully
    masked rows (left padding) come out as zeros, not NaN. A float mask is added to the scores, as
    eager attention does; ``extra`` adds a score bias and sink logits (``Extra``).
    """
    batch, n_heads, q_len, d_head = query.shape
    n_kv, k_len = key.shape[1], key.shape[2]
    group = n_heads // n_kv
    n_rows = q_len if row_index is None else row_index.numel()
    additive = [t for t in (_float_mask(attention_mask), extra and extra.bias) if t is not None]
    sinks = None if extra is None or extra.sinks is None else extra.sinks.float()
    if sinks is not None and sinks.dim() == 1:
        sinks = sinks.view(1, -1, 1, 1)
    for start in range(0, n_rows, rows_per_chunk):
        stop = min(start + rows_per_chunk, n_rows)
        rows = torch.arange(start, stop, device=query.device) if row_index is None else row_index[start:stop]
        blocked = None if _float_mask(attention_mask) is not None else _blocked(attention_mask, rows, q_len, k_len,
                                                                                 query.device)
        causal = attention_mask is None
        lo, hi = (0, k_len) if row_index is not None or additive else _key_range(blocked, stop, q_len, k_len, causal)
        q = query[:, :, start:stop] if row_index is None else query.index_select(2, rows)
        q = q.float().mul(scaling).reshape(batch, n_kv, group * (stop - start), d_head)
        k = key[:, :, lo:hi].float().transpose(-1, -2)  # [batch, kv_head, d_head, keys]
        scores = torch.matmul(q, k).view(batch, n_heads, stop - start, hi - lo)
        if softcap is not None:
            scores.div_(softcap).tanh_().mul_(softcap)
        for term in additive:
            scores.add_(_at_rows(term, rows, q_len)[..., lo:hi].float())
        if blocked is not None:
            scores.masked_fill_(blocked[..., lo:hi], float("-inf"))
        top = scores.amax(-1, keepdim=True)
        sink = None if sinks is None else _at_rows(sinks, rows, q_len).expand_as(top)
        if sink is not None:
            top = torch.maximum(top, sink)
        scores.sub_(top).exp_()  # softmax in place: no second [rows, keys] block in memory
        total = scores.sum(-1, keepdim=True)
        if sink is not None:
            total = total + (sink - top).exp()
        scores.div_(total).nan_to_num_(nan=0.0)
        yield Chunk(start, scores, lo, (top + total.log()).squeeze(-1))


def _float_mask(attention_mask):
    """The mask when it is additive (a float mask, eager's form), else None."""
    return attention_mask if attention_mask is not None and attention_mask.dtype != torch.bool else None


def _at_rows(tensor, rows: torch.Tensor, q_len: int):
    """A [.., q_pos|1, ..] tensor at the given query rows (axis 2); one broadcast row stays as it is."""
    return tensor.index_select(2, rows) if tensor.shape[2] == q_len and q_len > 1 else tensor


def _blocked(attention_mask, rows: torch.Tensor, q_len: int, k_len: int, device):
    """Boolean [batch|1, 1, rows, k_pos] of masked keys for the given query rows; None when nothing is masked."""
    if attention_mask is None:  # the mask function chose plain causal attention
        q_pos = rows + (k_len - q_len)
        return (torch.arange(k_len, device=device)[None, :] > q_pos[:, None])[None, None]
    return ~attention_mask.index_select(2, rows)[..., :k_len]


def _key_range(blocked, stop: int, q_len: int, k_len: int, causal_only: bool) -> tuple[int, int]:
    """[first, last + 1) of the keys any query row before ``stop`` in the chunk may attend to (all when none may)."""
    if blocked is None:
        return 0, k_len
    if causal_only:  # no device sync: the chunk's last row sees every key up to its own position
        return 0, min(k_len, stop + (k_len - q_len))
    allowed = (~blocked).flatten(0, 2).any(0).nonzero()
    return (0, k_len) if allowed.numel() == 0 else (int(allowed[0]), int(allowed[-1]) + 1)


def _entropy(chunk: Chunk, query_rows, keys, scaling):
    """Row entropy (nats) [batch, head, rows] without a log per probability: H = log Z + max - sum p * score.

    The score of key j is scaling * q . k_j, so sum_j p_j score_j = scaling * q . (sum_j p_j k_j): one
    matmul like P @ V. Only valid without a softcap (the caller checks).
    """
    pk = _grouped_matmul(chunk.probs, keys.float())  # [batch, head, rows, d_head]
    expected = (query_rows.float() * pk).sum(-1).mul_(scaling)
    return (chunk.log_norm - expected).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0).clamp_(min=0.0)


def _grouped_matmul(probs, value):
    """probs [batch, head, rows, keys] @ value [batch, kv_head, keys, d] with GQA grouping (one GEMM per KV head)."""
    batch, n_heads, rows, k_len = probs.shape
    n_kv = value.shape[1]
    grouped = probs.reshape(batch, n_kv, (n_heads // n_kv) * rows, k_len)
    return torch.matmul(grouped, value).view(batch, n_heads, rows, value.shape[-1])
