"""Gemma (1): llama layers with norms that scale by (1 + weight), a GELU-gated MLP and a scaled embedding."""

from lmxray.adapters.base import ArchSpec

SPEC = ArchSpec(
    family="gemma1",
    model_types=("gemma",),
    layers="model.layers",
    final_norm="model.norm",
    unembed="lm_head",
    attention="self_attn",
    attn_contribution="self_attn",
    mlp_contribution="mlp",
    mlp_down="mlp.down_proj",
    norm_eps_attr="eps",
    norm_weight_offset=1.0,
)
