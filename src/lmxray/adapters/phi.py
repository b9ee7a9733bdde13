"""Phi (1, 1.5, 2): attention and a plain GELU MLP in parallel on one LayerNorm, partial rotary, biased lm head."""

from lmxray.adapters.base import hf_decoder

SPEC = hf_decoder(
    family="phi",
    model_types=("phi",),
    final_norm="model.final_layernorm",
    mlp_down="mlp.fc2",
    norm_kind="layer",
    mlp_kind="plain",
    parallel_residual=True,
    mlp_norm="input_layernorm",
    out_proj="self_attn.dense",
    mlp_up="mlp.fc1",
    mlp_act="mlp.activation_fn",
    norm_eps_attr="eps",
)
