"""StarCoder2: LayerNorm with biases, biased projections, a plain GELU MLP (c_fc, c_proj)."""

from lmxray.adapters.base import hf_decoder

SPEC = hf_decoder(
    family="starcoder2",
    model_types=("starcoder2",),
    mlp_down="mlp.c_proj",
    norm_kind="layer",
    mlp_kind="plain",
    mlp_up="mlp.c_fc",
    mlp_act="mlp.act",
    norm_eps_attr="eps",
)
