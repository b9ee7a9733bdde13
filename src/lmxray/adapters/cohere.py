"""Cohere (Command-R): attention and MLP in parallel on one LayerNorm without bias; logits scaled by logit_scale."""

from lmxray.adapters.base import hf_decoder

SPEC = hf_decoder(
    family="cohere",
    model_types=("cohere", "cohere2", "cohere_compass_text"),
    norm_kind="layer",
    parallel_residual=True,
    logit_scale_attr="logit_scale",
    mlp_norm="input_layernorm",
)
