"""A tiny llama GGUF written from scratch (F32 weights, byte-level BPE tokenizer), for tests.

    tensors = write_tiny_llama_gguf(tmp_path / "tiny.gguf")   # HF-named float32 arrays

The Q/K weights are stored in llama.cpp's rotary layout (``permute`` below), which
transformers reverses on load, so a correct conversion gives back exactly ``tensors``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TINY_LLAMA = {
    "n_layers": 2,
    "hidden": 32,
    "n_heads": 4,
    "n_kv_heads": 2,
    "head_dim": 8,
    "intermediate": 64,
    "context": 128,
    "rope_theta": 10000.0,
    "rms_eps": 1e-5,
}
# Merges of the tiny byte-level BPE, best first ("Ġ" is the byte-level spelling of a space).
TINY_MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ c", "a p", "i t", "a l", "Ġc ap", "Ġcap it", "Ġcapit al"]
EOS_TOKEN = "<|endoftext|>"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def tiny_vocab() -> list[str]:
    """256 byte tokens, one token per merge, then the end-of-text token."""
    table = bytes_to_unicode()
    return [table[b] for b in range(256)] + [m.replace(" ", "") for m in TINY_MERGES] + [EOS_TOKEN]


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's Q/K row permutation (convert_hf_to_gguf.py ``LlamaModel.permute``)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_llama_gguf(path: Path, seed: int = 0, tied: bool = True) -> dict[str, np.ndarray]:
    """Write a 2-layer llama GGUF to ``path``; return its weights under HF names.

    With ``tied`` (the default, like SmolLM2) there is no ``output.weight`` in the file and
    no ``lm_head.weight`` in the result.
    """
    import gguf

    c = TINY_LLAMA
    vocab = tiny_vocab()
    h, nh, nkv, hd, inter = c["hidden"], c["n_heads"], c["n_kv_heads"], c["head_dim"], c["intermediate"]
    rng = np.random.default_rng(seed)

    def rand(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    hf: dict[str, np.ndarray] = {"model.embed_tokens.weight": rand(len(vocab), h, scale=0.5)}
    for i in range(c["n_layers"]):
        p = f"model.layers.{i}."
        hf[p + "input_layernorm.weight"] = 1 + rand(h, scale=0.1)
        hf[p + "self_attn.q_proj.weight"] = rand(nh * hd, h)
        hf[p + "self_attn.k_proj.weight"] = rand(nkv * hd, h)
        hf[p + "self_attn.v_proj.weight"] = rand(nkv * hd, h)
        hf[p + "self_attn.o_proj.weight"] = rand(h, nh * hd)
        hf[p + "post_attention_layernorm.weight"] = 1 + rand(h, scale=0.1)
        hf[p + "mlp.gate_proj.weight"] = rand(inter, h)
        hf[p + "mlp.up_proj.weight"] = rand(inter, h)
        hf[p + "mlp.down_proj.weight"] = rand(h, inter)
    hf["model.norm.weight"] = 1 + rand(h, scale=0.1)
    if not tied:
        hf["lm_head.weight"] = rand(len(vocab), h, scale=0.5)

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_context_length(c["context"])
    w.add_embedding_length(h)
    w.add_block_count(c["n_layers"])
    w.add_feed_forward_length(inter)
    w.add_rope_dimension_count(hd)
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_layer_norm_rms_eps(c["rms_eps"])
    w.add_rope_freq_base(c["rope_theta"])
    w.add_vocab_size(len(vocab))
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt2")
    w.add_token_list(vocab)
    w.add_token_types([gguf.TokenType.NORMAL] * (len(vocab) - 1) + [gguf.TokenType.CONTROL])
    w.add_token_merges(TINY_MERGES)
    w.add_bos_token_id(len(vocab) - 1)
    w.add_eos_token_id(len(vocab) - 1)
    w.add_add_bos_token(False)

    w.add_tensor("token_embd.weight", hf["model.embed_tokens.weight"])
    names = {
        "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    }  # fmt: skip
    for i in range(c["n_layers"]):
        for hf_part, gguf_part in names.items():
            t = hf[f"model.layers.{i}.{hf_part}.weight"]
            if gguf_part == "attn_q":
                t = permute(t, nh)
            elif gguf_part == "attn_k":
                t = permute(t, nkv)
            w.add_tensor(f"blk.{i}.{gguf_part}.weight", np.ascontiguousarray(t))
    w.add_tensor("output_norm.weight", hf["model.norm.weight"])
    if not tied:
        w.add_tensor("output.weight", hf["lm_head.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return hf
