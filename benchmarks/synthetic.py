"""Random-weight models with real models' dimensions, and a stand-in tokenizer, for benchmarks on a GPU.

Nothing here reads a model file, so a benchmark can run on a machine that holds only this repository.
"""

from __future__ import annotations

import contextlib
import re
import zlib

import torch

_ROPE = {"rope_type": "default", "rope_theta": 1_000_000.0}

# Qwen2 configs. ``dtype``: what --dtype auto means for them.
QWEN_CONFIGS = {
    "qwen2.5-7b": dict(
        dtype="bfloat16",
        config=dict(num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4, hidden_size=3584,
                    intermediate_size=18944, vocab_size=152064, max_position_embeddings=32768,
                    rms_norm_eps=1e-6, tie_word_embeddings=False, rope_parameters=_ROPE),
    ),
    # Scaled down (same GQA shape: 4 query heads per KV head) to exercise the same paths on a CPU.
    "tiny-qwen": dict(
        dtype="float32",
        config=dict(num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2, hidden_size=512,
                    intermediate_size=1536, vocab_size=32768, max_position_embeddings=32768,
                    rms_norm_eps=1e-6, tie_word_embeddings=False, rope_parameters=_ROPE),
    ),
}

_PIECES = re.compile(r"\s?\w+|\s?[^\w\s]|\s+")


class SyntheticTokenizer:
    """Each word or punctuation mark (with its leading space) becomes one stable id, close to a BPE
    tokenizer's count on English text; token text is ``<id>``. Needs no vocabulary file."""

    pad_token_id = eos_token_id = 0
    bos_token_id = None

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        pieces = _PIECES.findall(text)
        return {"input_ids": [1 + zlib.crc32(p.encode()) % (self.vocab_size - 1) for p in pieces]}

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=False) -> str:
        return "".join(f"<{int(i)}>" for i in ids)


def words(n: int) -> str:
    """A text the stand-in tokenizer turns into exactly ``n`` ids."""
    return "".join(f" w{i}" for i in range(n))


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def synthetic_qwen(name: str, device, dtype: torch.dtype | None = None, n_layers: int | None = None):
    """A Qwen2ForCausalLM with the named dimensions and random weights (seed 0), built directly on
    ``device`` in ``dtype`` (no fp32 copy of a 7B model), wrapped as an lmxray Model."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from lmxray.models.loader import from_hf

    entry = QWEN_CONFIGS[name]
    dtype = dtype or getattr(torch, entry["dtype"])
    settings = dict(entry["config"])
    if n_layers is not None:
        settings["num_hidden_layers"] = n_layers
    config = Qwen2Config(**settings)
    torch.manual_seed(0)
    with _default_dtype(dtype), torch.device(device):
        hf = Qwen2ForCausalLM(config).to(dtype)  # a no-op unless some module ignored the default dtype
    label = f"synthetic:{name}" + (f"[{n_layers} layers]" if n_layers is not None else "")
    return from_hf(hf, SyntheticTokenizer(config.vocab_size), name=label)
