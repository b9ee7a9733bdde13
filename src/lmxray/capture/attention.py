"""The registered attention function: SDPA output, plus exact fp32 probabilities for the recorder.

transformers calls it with post-RoPE, post-norm q/k/v, the scaling, the mask
(from the matching registered mask function) and the softcap. The output is
computed exactly as the stock ``sdpa`` implementation does, so logits do not
change; probabilities are computed on the side, in fp32 row chunks, only when
a recorder is passed in the forward kwargs.
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
    wants_probs = recorder is not None and recorder.wants_probabilities(module)
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    if softcap is None:
        output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
        if wants_probs:  # only the query rows the plan keeps
            chunk = recorder.rows_per_chunk(query, key)
            index = recorder.rows_needed
            for start, probs in iter_probabilities(query, key, attention_mask, scaling, None, chunk, index):
                recorder.on_probabilities(module, start, probs, all_rows=index is None)
    else:
        # SDPA has no softcap: compute the output from the probabilities, as eager attention does.
        chunk = recorder.rows_per_chunk(query, key) if wants_probs else query.shape[2]
        parts = []
        for start, probs in iter_probabilities(query, key, attention_mask, scaling, softcap, chunk):
            if wants_probs:
                recorder.on_probabilities(module, start, probs, all_rows=True)
            parts.append(_weighted_values(probs.to(value.dtype), value))
        output = torch.cat(parts, dim=2).transpose(1, 2).contiguous()
    if recorder is not None:
        recorder.on_qkv(module, query, key, value)
    return output, None


def iter_probabilities(query, key, attention_mask, scaling, softcap, rows_per_chunk, row_index=None):
    """Yield ``(offset of the chunk in the row index, fp32 probabilities [batch, head, rows, k_pos])`` chunk by chunk.

    ``row_index`` (sorted) limits the work to those query rows; None means all.
    GQA is handled by grouping query heads per KV head (no repeated keys in
    memory); fully masked rows (left padding) come out as zeros, not NaN.
    """
    batch, n_heads, q_len, d_head = query.shape
    n_kv, k_len = key.shape[1], key.shape[2]
    group = n_heads // n_kv
    k = key.float().unsqueeze(2).transpose(-1, -2)  # [batch, kv_head, 1, d_head, k_pos]
    if row_index is None:
        row_index = torch.arange(q_len, device=query.device)
    for start in range(0, row_index.numel(), rows_per_chunk):
        rows = row_index[start:start + rows_per_chunk]
        q = query.index_select(2, rows).float().reshape(batch, n_kv, group, -1, d_head)
        scores = torch.matmul(q, k).reshape(batch, n_heads, -1, k_len).mul_(scaling)  # fresh: edit in place
        if softcap is not None:
            scores = scores.div_(softcap).tanh_().mul_(softcap)
        allowed = _allowed(attention_mask, rows, q_len, k_len, query.device)
        if allowed is not None:
            scores.masked_fill_(~allowed, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        del scores
        yield start, probs.nan_to_num_(nan=0.0)


def _allowed(attention_mask, rows: torch.Tensor, q_len: int, k_len: int, device):
    """Boolean [batch|1, 1, rows, k_pos] of allowed keys for the given query rows."""
    if attention_mask is None:  # the mask function chose plain causal attention
        q_pos = rows + (k_len - q_len)
        return (torch.arange(k_len, device=device)[None, :] <= q_pos[:, None])[None, None]
    mask = attention_mask.index_select(2, rows)[..., :k_len]
    return mask if mask.dtype == torch.bool else mask == 0


def _weighted_values(probs, value):
    """probs [batch, head, rows, k_pos] @ value [batch, kv_head, k_pos, d] with GQA grouping."""
    batch, n_heads, rows, k_len = probs.shape
    n_kv = value.shape[1]
    grouped = probs.reshape(batch, n_kv, n_heads // n_kv, rows, k_len)
    return torch.matmul(grouped, value.unsqueeze(2)).reshape(batch, n_heads, rows, value.shape[-1])
