"""Mixtral-style mixtures of experts (Mixtral, Qwen3-MoE, OLMoE): llama layers whose MLP routes each token to its
top-k GLU experts (transformers' experts interface); no shared expert."""

from lmxray.adapters.base import ArchSpec

SPEC = ArchSpec(
    family="mixtral",
    model_types=("mixtral", "qwen3_moe", "olmoe", "minimax_m2", "mellum"),
    layers="model.layers",
    final_norm="model.norm",
    unembed="lm_head",
    attention="self_attn",
    attn_contribution="self_attn",
    mlp_contribution="mlp",
    mlp_down="mlp.down_proj",  # dense layers only (mlp_only_layers); routed layers have no one hidden state
    moe_experts="mlp.experts",
)
