"""StableLM: LayerNorm with biases, partial rotary, GLU MLP; attention and MLP in parallel when the config says."""

from lmxray.adapters.base import ArchSpec

SPEC = ArchSpec(
    family="stablelm",
    model_types=("stablelm",),
    layers="model.layers",
    final_norm="model.norm",
    unembed="lm_head",
    attention="self_attn",
    attn_contribution="self_attn",
    mlp_contribution="mlp",
    mlp_down="mlp.down_proj",
    norm_kind="layer",
    parallel_residual_attr="use_parallel_residual",
    norm_eps_attr="eps",
)
