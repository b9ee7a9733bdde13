"""Phi-3: fused qkv and gate_up projections, RMSNorm, GLU MLP."""

from lmxray.models.adapters.base import ArchSpec

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
)
