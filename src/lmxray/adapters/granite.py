"""Granite: llama layers whose attention and MLP outputs are scaled by residual_multiplier; logits divided by
logits_scaling (the embedding multiplier is in the captured embedding, the attention multiplier in the pattern)."""

from lmxray.adapters.base import hf_decoder

SPEC = hf_decoder(
    family="granite",
    model_types=("granite", "granite_swa"),
    attn_contribution=None,  # attention's output is scaled before it is added: no module outputs the addition
    mlp_contribution=None,
    logit_divisor_attr="logits_scaling",
    residual_multiplier_attr="residual_multiplier",
)
