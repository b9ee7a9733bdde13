"""The registered attention function: the model's attention output, plus exact fp32 probabilities for the recorder.

transformers calls it with post-RoPE, post-norm q/k/v, the scaling, the mask
(from the matching registered mask function) and the softcap. Without a
recorder it is the stock ``sdpa`` path, so logits do not change. With one, the
plan decides how the probabilities are made (docs/capture.md, "Two paths"):

* one pass: when the plan needs at least half of the query rows (or the model
  softcaps), fp32 probabilities are computed chunk by chunk and produce the
  output themselves, as eager attention does; per-head maps are computed in
  place in the recorder's buffer when its layout allows.
* SDPA plus recompute: when the plan needs few rows (a sweep keeps one), SDPA
  gives the output and only the needed rows are recomputed in fp32.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTN_IMPLEMENTATION = "lmxray"
RECORDER_KWARG = "lmxray_recorder"


def register() -> str:
    """Register the attention and mask functions under ``"lmxray"`` (idempotent)."""
    AttentionInterface.register(ATTN_IMPLEMENTATION, capture_attention)
    AttentionMaskInterface.register(ATTN_IMPLEMENTATION, sdpa_mask)
    return ATTN_IMPLEMENTATION


def capture_attention(module, query, key, value, attention_mask, scaling=None, softcap=None, **kwargs):
    """Attention forward: ``query`` [batch, head, q_pos, d_head]; ``key``/``value`` [batch, kv_head, k_pos, d_head]."""
    recorder = kwargs.pop(RECORDER_KWARG, None)
    if recorder is not None and not recorder.wants_probabilities(module):
        recorder.on_qkv(module, query, key, value)
        recorder = None  # a layer the plan does not capture runs as if untraced
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    if softcap is None and (recorder is None or not recorder.one_pass(query.shape[2])):
        output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
        if recorder is not None:  # only the query rows the plan keeps
            chunk = recorder.rows_per_chunk(query, key)
            for start, probs, _ in iter_probabilities(query, key, attention_mask, scaling, None, chunk,
                                                      recorder.rows_needed):
                recorder.on_probabilities(module, start, probs, query_rows=False)
    else:
        output = _one_pass(module, query, key, value, attention_mask, scaling, softcap, recorder)
    if recorder is not None:
        recorder.on_qkv(module, query, key, value)
    return output, None


def _one_pass(module, query, key, value, attention_mask, scaling, softcap, recorder):
    """Output [batch, q_pos, head, d_head] from fp32 probabilities of every row, handed to the recorder on the way."""
    chunk = recorder.rows_per_chunk(query, key) if recorder is not None else query.shape[2]
    dest = None if recorder is None else (lambda start, rows: recorder.probability_buffer(module, start, rows))
    entropy = recorder is not None and recorder.wants_entropy and softcap is None
    key_t = key.float().transpose(-1, -2).unsqueeze(2)  # [batch, kv_head, 1, d_head, k_pos]: made once
    parts = []
    for start, probs, log_norm in iter_probabilities(query, key_t, attention_mask, scaling, softcap, chunk,
                                                     dest=dest, keys_ready=True):
        if recorder is not None:
            rows = query[:, :, start:start + probs.shape[2]]
            ent = _entropy(probs, log_norm, rows, key_t, scaling) if entropy else None
            recorder.on_probabilities(module, start, probs, query_rows=True, entropy=ent)
        parts.append(_grouped_matmul(probs.to(value.dtype), value))
    output = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)
    return output.transpose(1, 2).contiguous()


def iter_probabilities(query, key, attention_mask, scaling, softcap, rows_per_chunk, row_index=None, *,
                       dest=None, keys_ready=False):
    """Yield ``(offset in the row index, fp32 probabilities [batch, head, rows, k_pos], max + log of the
    softmax normaliser [batch, head, rows])`` chunk by chunk.

    ``row_index`` (sorted) limits the work to those query rows; None means all. ``dest(start, rows)``
    may return a buffer to compute the chunk in place. GQA is handled by grouping query heads per KV
    head (no repeated keys in memory); fully masked rows (left padding) come out as zeros, not NaN.
    """
    batch, n_heads, q_len, d_head = query.shape
    k = key if keys_ready else key.float().transpose(-1, -2).unsqueeze(2)  # [batch, kv_head, 1, d_head, k_pos]
    n_kv, k_len = k.shape[1], k.shape[-1]
    group = n_heads // n_kv
    n_rows = q_len if row_index is None else row_index.numel()
    for start in range(0, n_rows, rows_per_chunk):
        stop = min(start + rows_per_chunk, n_rows)
        rows = torch.arange(start, stop, device=query.device) if row_index is None else row_index[start:stop]
        q = query[:, :, start:stop] if row_index is None else query.index_select(2, rows)
        q = q.float().mul(scaling).reshape(batch, n_kv, group, -1, d_head)
        out = None if dest is None else dest(start, stop - start)
        if out is None:
            scores = torch.matmul(q, k).view(batch, n_heads, -1, k_len)
        else:
            scores = torch.matmul(q, k, out=out.view(batch, n_kv, group, -1, k_len)).view(batch, n_heads, -1, k_len)
        if softcap is not None:
            scores.div_(softcap).tanh_().mul_(softcap)
        blocked = _blocked(attention_mask, rows, q_len, k_len, query.device)
        if blocked is not None:
            scores.masked_fill_(blocked, float("-inf"))
        top = scores.amax(-1, keepdim=True)
        scores.sub_(top).exp_()  # softmax in place: no second [rows, k_pos] block in memory
        total = scores.sum(-1, keepdim=True)
        scores.div_(total).nan_to_num_(nan=0.0)
        yield start, scores, (top + total.log()).squeeze(-1)


def _blocked(attention_mask, rows: torch.Tensor, q_len: int, k_len: int, device):
    """Boolean [batch|1, 1, rows, k_pos] of masked keys for the given query rows; None when nothing is masked."""
    if attention_mask is None:  # the mask function chose plain causal attention
        q_pos = rows + (k_len - q_len)
        return (torch.arange(k_len, device=device)[None, :] > q_pos[:, None])[None, None]
    mask = attention_mask.index_select(2, rows)[..., :k_len]
    return ~mask if mask.dtype == torch.bool else mask != 0


def _entropy(probs, log_norm, query_rows, key_t, scaling):
    """Row entropy (nats) [batch, head, rows] without a log per probability: H = log Z + max - sum p * score.

    The score of key j is scaling * q . k_j, so sum_j p_j score_j = scaling * q . (sum_j p_j k_j): one
    matmul like P @ V. Only valid without a softcap (the caller checks).
    """
    pk = _grouped_matmul(probs, key_t.squeeze(2).transpose(-1, -2))  # [batch, head, rows, d_head]
    expected = (query_rows.float() * pk).sum(-1).mul_(scaling)
    return (log_norm - expected).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0).clamp_(min=0.0)


def _grouped_matmul(probs, value):
    """probs [batch, head, rows, k_pos] @ value [batch, kv_head, k_pos, d] with GQA grouping."""
    batch, n_heads, rows, k_len = probs.shape
    n_kv = value.shape[1]
    grouped = probs.reshape(batch, n_kv, n_heads // n_kv, rows, k_len)
    return torch.matmul(grouped, value.unsqueeze(2)).reshape(batch, n_heads, rows, value.shape[-1])
