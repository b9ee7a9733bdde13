"""Phi-3: fused qkv and gate_up projections, RMSNorm, GLU MLP."""

from lmxray.adapters.base import ArchSpec

SPEC = ArchSpec(
    family="phi3",
    model_types=("phi3",),
    layers="model.layers",
    final_norm="model.norm",
    unembed="lm_head",
    attention="self_attn",
    attn_contribution="self_attn",
    mlp_contribution="mlp",
    mlp_down="mlp.down_proj",
    norm_kind="rms",
    mlp_kind="glu",
    value_proj="self_attn.qkv_proj",
    value_rows="last",
    mlp_up="mlp.gate_up_proj",
    up_rows="last",
    mlp_act="mlp.activation_fn",
)
