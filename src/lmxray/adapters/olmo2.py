"""OLMo 2: no norm before attention or the MLP; RMS norms on their outputs (and q/k norms inside attention)."""

from lmxray.adapters.base import hf_decoder

SPEC = hf_decoder(
    family="olmo2",
    model_types=("olmo2", "olmo3", "exaone4"),
    attn_contribution="post_attention_layernorm",
    mlp_contribution="post_feedforward_layernorm",
    post_norms=True,
    input_norm=None,
    mlp_norm=None,
    attn_post_norm="post_attention_layernorm",
    mlp_post_norm="post_feedforward_layernorm",
)
