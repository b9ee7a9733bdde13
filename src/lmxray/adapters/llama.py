"""Llama family: Llama, Mistral, Qwen2, Qwen3 (q/k norms live inside attention), SmolLM2/3 and the types whose
layers are the same (each checked by the support matrix: tests/test_support_matrix.py)."""

from lmxray.adapters.base import hf_decoder

SPEC = hf_decoder(
    family="llama",
    model_types=("llama", "mistral", "qwen2", "qwen3", "ministral", "ministral3", "smollm3", "helium", "internlm3",
                 "seed_oss", "hunyuan_v1_dense", "ernie4_5", "iquestcoder", "cwm", "flint"),
    norm_kind="rms",
    mlp_kind="glu",
)
