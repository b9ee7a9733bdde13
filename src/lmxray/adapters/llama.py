"""Llama family: Llama, Mistral, Qwen2, Qwen3 (q/k norms live inside attention), SmolLM2."""

from lmxray.adapters.base import ArchSpec

SPEC = ArchSpec(
    family="llama",
    model_types=("llama", "mistral", "qwen2", "qwen3"),
    layers="model.layers",
    final_norm="model.norm",
    unembed="lm_head",
    attention="self_attn",
    attn_contribution="self_attn",
    mlp_contribution="mlp",
    mlp_down="mlp.down_proj",
    norm_kind="rms",
    mlp_kind="glu",
)
