"""GPT-2: LayerNorm, biases, Conv1D projections, learned absolute positions."""

from lmxray.models.adapters.base import ArchSpec

SPEC = ArchSpec(
    family="gpt2",
    model_types=("gpt2",),
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
)
