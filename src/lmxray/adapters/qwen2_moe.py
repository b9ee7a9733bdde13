"""Qwen2-MoE: routed top-k GLU experts plus a shared expert scaled by the sigmoid of its own gate."""

from lmxray.adapters.base import hf_decoder

SPEC = hf_decoder(
    family="qwen2_moe",
    model_types=("qwen2_moe",),
    mlp_down="mlp.down_proj",  # dense layers only (mlp_only_layers)
    moe_experts="mlp.experts",
    moe_shared="mlp.shared_expert",
    moe_shared_gate="mlp.shared_expert_gate",
)
