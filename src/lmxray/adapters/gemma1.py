"""Gemma (1): llama layers with norms that scale by (1 + weight), a GELU-gated MLP and a scaled embedding."""

from lmxray.adapters.base import hf_decoder

SPEC = hf_decoder(
    family="gemma1",
    model_types=("gemma",),
    norm_eps_attr="eps",
    norm_weight_offset=1.0,
)
