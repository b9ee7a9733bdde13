"""GPT-NeoX / Pythia: parallel attention + MLP, partial rotary, LayerNorm with biases."""

from lmxray.adapters.base import ArchSpec

SPEC = ArchSpec(
    family="gpt_neox",
    model_types=("gpt_neox",),
    layers="gpt_neox.layers",
    final_norm="gpt_neox.final_layer_norm",
    unembed="lm_head",
    attention="attention",
    attn_contribution="attention",
    mlp_contribution="mlp",
    mlp_down="mlp.dense_4h_to_h",
    norm_kind="layer",
    mlp_kind="plain",
    parallel_residual=True,
    parallel_residual_attr="use_parallel_residual",
    value_proj="attention.query_key_value",
    value_rows="per_head_last",
    out_proj="attention.dense",
    mlp_up="mlp.dense_h_to_4h",
    mlp_act="mlp.act",
    norm_eps_attr="eps",
)
