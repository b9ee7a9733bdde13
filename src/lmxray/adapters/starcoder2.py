"""StarCoder2: LayerNorm with biases, biased projections, a plain GELU MLP (c_fc, c_proj)."""

from lmxray.adapters.base import ArchSpec

SPEC = ArchSpec(
    family="starcoder2",
    model_types=("starcoder2",),
    layers="model.layers",
    final_norm="model.norm",
    unembed="lm_head",
    attention="self_attn",
    attn_contribution="self_attn",
    mlp_contribution="mlp",
    mlp_down="mlp.c_proj",
    norm_kind="layer",
    mlp_kind="plain",
    mlp_up="mlp.c_fc",
    mlp_act="mlp.act",
    norm_eps_attr="eps",
)
