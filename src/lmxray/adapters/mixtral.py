"""Mixtral-style mixtures of experts (Mixtral, Qwen3-MoE, OLMoE): llama layers whose MLP routes each token to its
top-k GLU experts (transformers' experts interface); no shared expert."""

from lmxray.adapters.base import hf_decoder

SPEC = hf_decoder(
    family="mixtral",
    model_types=("mixtral", "qwen3_moe", "olmoe", "minimax_m2", "mellum"),
    mlp_down="mlp.down_proj",  # dense layers only (mlp_only_layers); routed layers have no one hidden state
    moe_experts="mlp.experts",
)
