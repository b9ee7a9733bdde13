"""Falcon (7B layout: one LayerNorm, attention and a plain GELU MLP in parallel, multi-query fused qkv, rotary).

Falcon computes its attention inside ``FalconAttention.forward``; the loader binds
``forward`` below in its place: the same projections and rotary (or ALiBi, as a
score bias), with the scores, softmax and value mixing left to transformers'
attention interface, so lmxray's registered function records them.
"""

import math

from lmxray.adapters.base import ArchSpec


def forward(self, hidden_states, alibi, attention_mask, position_ids=None, layer_past=None, use_cache=False,
            output_attentions=False, position_embeddings=None, **kwargs):
    """``FalconAttention.forward`` through the attention interface."""
    from transformers.models.falcon.modeling_falcon import apply_rotary_pos_emb

    num_kv_heads = self.num_heads if self.new_decoder_architecture else self.num_kv_heads
    query, key, value = self._split_heads(self.query_key_value(hidden_states))  # [batch, pos, head, d_head]
    batch, length = query.shape[:2]
    query = query.transpose(1, 2).reshape(batch, self.num_heads, length, self.head_dim)
    key = key.transpose(1, 2).reshape(batch, num_kv_heads, length, self.head_dim)
    value = value.transpose(1, 2).reshape(batch, num_kv_heads, length, self.head_dim)
    bias = None
    if alibi is None:
        query, key = apply_rotary_pos_emb(query, key, *position_embeddings)
        scaling = 1.0 / math.sqrt(self.head_dim)
    else:  # ALiBi: (q k + alibi) * inv_norm_factor
        scaling = self.inv_norm_factor
        bias = alibi.view(batch, self.num_heads, 1, -1) * self.inv_norm_factor
    if layer_past is not None:
        key, value = layer_past.update(key, value, self.layer_idx)
    output, _ = self.lmxray_attention(self, query, key, value, attention_mask, scaling=scaling, position_bias=bias)
    return self.dense(output.reshape(batch, length, self.num_heads * self.head_dim)), None


SPEC = ArchSpec(
    family="falcon",
    model_types=("falcon",),
    layers="transformer.h",
    final_norm="transformer.ln_f",
    unembed="lm_head",
    attention="self_attention",
    attn_contribution="self_attention",
    mlp_contribution="mlp",
    mlp_down="mlp.dense_4h_to_h",
    norm_kind="layer",
    mlp_kind="plain",
    parallel_residual=True,
    attention_shim=forward,
    value_proj="self_attention.query_key_value",
    value_rows="last",  # multi-query: [q (heads * d_head) | k (d_head) | v (d_head)]
    kv_heads_attr="num_kv_heads",  # 1 when multi-query, whatever the config's num_kv_heads
    out_proj="self_attention.dense",
    mlp_norm="input_layernorm",
    mlp_up="mlp.dense_h_to_4h",
    mlp_act="mlp.act",
    norm_eps_attr="eps",
)
