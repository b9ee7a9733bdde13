"""Gemma 2 and 3: pre and post norms around attention and MLP, softcaps, sliding window, scaled embeddings."""

from lmxray.adapters.base import hf_decoder

SPEC = hf_decoder(
    family="gemma",
    model_types=("gemma2", "gemma3_text"),
    attn_contribution="post_attention_layernorm",
    mlp_contribution="post_feedforward_layernorm",
    norm_kind="rms",
    mlp_kind="glu",
    post_norms=True,
    logit_softcap_attr="final_logit_softcapping",
    mlp_norm="pre_feedforward_layernorm",
    attn_post_norm="post_attention_layernorm",
    mlp_post_norm="post_feedforward_layernorm",
    norm_eps_attr="eps",
    norm_weight_offset=1.0,
)
