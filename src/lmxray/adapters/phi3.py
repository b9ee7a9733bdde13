"""Phi-3: fused qkv and gate_up projections, RMSNorm, GLU MLP."""

from lmxray.adapters.base import hf_decoder

SPEC = hf_decoder(
    family="phi3",
    model_types=("phi3",),
    norm_kind="rms",
    mlp_kind="glu",
    value_proj="self_attn.qkv_proj",
    value_rows="last",
    mlp_up="mlp.gate_up_proj",
    up_rows="last",
    mlp_act="mlp.activation_fn",
)
