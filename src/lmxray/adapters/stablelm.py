"""StableLM: LayerNorm with biases, partial rotary, GLU MLP; attention and MLP in parallel when the config says."""

from lmxray.adapters.base import hf_decoder

SPEC = hf_decoder(
    family="stablelm",
    model_types=("stablelm",),
    norm_kind="layer",
    parallel_residual_attr="use_parallel_residual",
    norm_eps_attr="eps",
)
