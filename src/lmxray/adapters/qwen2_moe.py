"""Qwen2-MoE: routed top-k GLU experts plus a shared expert scaled by the sigmoid of its own gate."""

from lmxray.adapters.base import ArchSpec

SPEC = ArchSpec(
    family="qwen2_moe",
    model_types=("qwen2_moe",),
    layers="model.layers",
    final_norm="model.norm",
    unembed="lm_head",
    attention="self_attn",
    attn_contribution="self_attn",
    mlp_contribution="mlp",
    mlp_down="mlp.down_proj",  # dense layers only (mlp_only_layers)
    moe_experts="mlp.experts",
    moe_shared="mlp.shared_expert",
    moe_shared_gate="mlp.shared_expert_gate",
)
