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


def add_tiny_tokenizer(w, vocab: list[str]) -> None:
    """The f32 file type and the tiny byte-level BPE tokenizer (its last token is BOS and EOS)."""
    import gguf

    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt2")
    w.add_token_list(vocab)
    w.add_token_types([gguf.TokenType.NORMAL] * (len(vocab) - 1) + [gguf.TokenType.CONTROL])
    w.add_token_merges(TINY_MERGES)
    w.add_bos_token_id(len(vocab) - 1)
    w.add_eos_token_id(len(vocab) - 1)


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
    add_tiny_tokenizer(w, vocab)
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


# GGUF architecture -> the transformers model type its tiny model is built from (transformers' GGUF reader maps back)
GGUF_ARCHS = {
    "llama": "llama", "mistral": "mistral", "qwen2": "qwen2", "qwen2moe": "qwen2_moe", "qwen3": "qwen3",
    "qwen3moe": "qwen3_moe", "gpt-oss": "gpt_oss", "lfm2": "lfm2", "falcon": "falcon", "phi3": "phi3",
    "bloom": "bloom", "stablelm": "stablelm", "gpt2": "gpt2", "starcoder2": "starcoder2", "mamba": "mamba",
    "nemotron": "nemotron", "gemma2": "gemma2", "gemma3": "gemma3_text", "gemma4": "gemma4_text",
    "minimax-m2": "minimax_m2",
}


def _to_gguf(name: str, weights: np.ndarray, model_type: str, config) -> list[tuple[str, np.ndarray]]:
    """What llama.cpp's converter stores for one HF tensor (the inverse of transformers' GGUF tensor processors)."""
    if model_type in ("llama", "mistral") and (".attn_q." in name or ".attn_k." in name):
        heads = config.num_attention_heads if ".attn_q." in name else config.num_key_value_heads
        return [(name, permute(weights, heads))]
    if "gate_up_exps" in name:  # HF gate|up fused: two GGUF tensors
        half = weights.shape[1] // 2
        return [(name.replace("gate_up", "gate"), weights[:, :half]), (name.replace("gate_up", "up"), weights[:, half:])]
    if "ffn_gate_inp_shexp" in name:
        return [(name, weights.reshape(-1))]
    if model_type == "bloom" and "attn_qkv" in name:  # per-head [q k v] -> [q; k; v]
        heads = config.n_head
        shaped = weights.reshape(heads, 3, -1, *weights.shape[1:])
        return [(name, np.ascontiguousarray(shaped.swapaxes(0, 1)).reshape(weights.shape))]
    if model_type == "gpt2" and any(k in name for k in ("attn_qkv.weight", "ffn_down.weight", "ffn_up.weight",
                                                        "attn_output.weight")):
        return [(name, np.ascontiguousarray(weights.T))]
    if model_type in ("nemotron", "gemma2", "gemma3_text") and "norm.weight" in name:
        return [(name, weights + 1)]
    if model_type == "mamba" and "ssm_conv1d.weight" in name or model_type == "lfm2" and "shortconv.conv" in name:
        return [(name, weights.squeeze(1))]
    if model_type == "mamba" and name.endswith("ssm_a"):
        return [(name, -np.exp(weights))]
    return [(name, weights)]


# config attributes transformers' GGUF reader takes from the file -> the tiny value written (the rest keep their
# defaults on both sides, as the reader rebuilds the config from the file and the class defaults)
GGUF_SMALL = {
    "num_hidden_layers": 2, "n_layer": 2, "hidden_size": 64, "n_embd": 64, "num_attention_heads": 4, "n_head": 4,
    "num_key_value_heads": 2, "intermediate_size": 96, "head_dim": 16,
    "max_position_embeddings": 64, "num_experts": 4, "num_local_experts": 4, "num_experts_per_tok": 2,
    "sliding_window": 4,
}


# settings transformers' reader fixes for a type whatever the file says (its load_gguf_checkpoint)
GGUF_AS_READ = {"lfm2": {"block_auto_adjust_ff_dim": False}}


def write_tiny_gguf(path: Path, arch: str, seed: int = 0):
    """Write a 2-layer random model of GGUF architecture ``arch`` (the byte-level BPE tokenizer above); return the
    HF model whose weights were written."""
    import gguf
    import torch
    from transformers import CONFIG_MAPPING, AutoModelForCausalLM
    from transformers.integrations.ggml import GGUF_CONFIG_DEFAULTS_MAPPING, GGUF_CONFIG_MAPPING
    from transformers.modeling_gguf_pytorch_utils import (TENSOR_PROCESSORS, TensorProcessor,
                                                          get_gguf_hf_weights_map)

    model_type = GGUF_ARCHS[arch]
    vocab = tiny_vocab()
    mapping = GGUF_CONFIG_MAPPING[model_type.removesuffix("_text")]
    config = CONFIG_MAPPING[model_type](**{attr: GGUF_SMALL[attr] for attr in mapping.values() if attr in GGUF_SMALL},
                                        **GGUF_CONFIG_DEFAULTS_MAPPING.get(model_type, {}), **GGUF_AS_READ.get(model_type, {}),
                                        vocab_size=len(vocab),
                                        pad_token_id=0, bos_token_id=len(vocab) - 1, eos_token_id=len(vocab) - 1)
    torch.manual_seed(seed)
    hf = AutoModelForCausalLM.from_config(config).eval()
    file_arch = "llama" if arch == "mistral" else arch  # llama.cpp names Mistral llama; the file name tells them apart
    w = gguf.GGUFWriter(str(path), file_arch)
    w.add_name(f"tiny-{arch}")
    for key, attr in mapping.items():
        value = getattr(config, attr, None) if isinstance(attr, str) else None
        if attr == "rope_theta" and value is None:  # configs that keep it in rope_parameters only (LFM2)
            value = config.rope_parameters.get("rope_theta")
        if key == "attention.head_count_kv" and model_type == "lfm2":  # per layer: 0 marks a convolution layer
            w.add_array(f"{file_arch}.{key}", [value if t == "full_attention" else 0 for t in config.layer_types])
        elif isinstance(value, int) and not isinstance(value, bool):
            w.add_uint32(f"{file_arch}.{key}", value)
        elif isinstance(value, float):
            w.add_float32(f"{file_arch}.{key}", value)
        elif key.endswith("epsilon"):  # a config naming it otherwise (LFM2's norm_eps): the reader still wants it
            w.add_float32(f"{file_arch}.{key}", 1e-5)
    add_tiny_tokenizer(w, vocab)
    w.add_pad_token_id(0)
    w.add_unk_token_id(0)
    w.add_add_bos_token(False)
    processor = TENSOR_PROCESSORS.get(file_arch, TensorProcessor)(config=config.to_dict())
    to_gguf = {}
    for gguf_name, hf_name in get_gguf_hf_weights_map(hf, processor, model_type=file_arch if arch == "mistral"
                                                      else None).items():
        fused = gguf_name.replace("ffn_up_exps", "ffn_gate_up_exps").replace("ffn_gate_exps", "ffn_gate_up_exps")
        if "_exps" in fused and not fused.endswith((".weight", ".bias")):  # fused experts: no suffix in HF
            fused += ".weight"
        to_gguf.setdefault(hf_name, fused)
    for hf_name, tensor in hf.state_dict().items():
        name = to_gguf.pop(hf_name, None)  # tied weights appear once
        if name is not None:
            for gguf_name, weights in _to_gguf(name, tensor.detach().float().numpy(), model_type, config):
                w.add_tensor(gguf_name, np.ascontiguousarray(weights))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return hf
