"""GPT-2: LayerNorm, biases, Conv1D projections, learned absolute positions."""

from lmxray.adapters.base import ArchSpec

SPEC = ArchSpec(
    family="gpt2",
    model_types=("gpt2", "gpt_bigcode"),
    layers="transformer.h",
    final_norm="transformer.ln_f",
    unembed="lm_head",
    attention="attn",
    attn_contribution="attn",
    mlp_contribution="mlp",
    mlp_down="mlp.c_proj",
    norm_kind="layer",
    mlp_kind="plain",
    learned_positions=True,
    input_norm="ln_1",
    mlp_norm="ln_2",
    value_proj="attn.c_attn",
    value_rows="last",
    out_proj="attn.c_proj",
    mlp_up="mlp.c_fc",
    mlp_act="mlp.act",
    norm_eps_attr="eps",
)
