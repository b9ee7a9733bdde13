"""Cohere (Command-R): attention and MLP in parallel on one LayerNorm without bias; logits scaled by logit_scale."""

from lmxray.adapters.base import ArchSpec

SPEC = ArchSpec(
    family="cohere",
    model_types=("cohere", "cohere2", "cohere_compass_text"),
    layers="model.layers",
    final_norm="model.norm",
    unembed="lm_head",
    attention="self_attn",
    attn_contribution="self_attn",
    mlp_contribution="mlp",
    mlp_down="mlp.down_proj",
    norm_kind="layer",
    parallel_residual=True,
    logit_scale_attr="logit_scale",
    mlp_norm="input_layernorm",
)
