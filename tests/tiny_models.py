"""Tiny random-init models of every supported family, built in-process (fp32, fixed seed).

Every config key set here is checked to be a real attribute of the config, so a
misspelt key cannot silently build a different model.
"""

from __future__ import annotations

import torch
import transformers
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

CHARS = [chr(c) for c in range(32, 127)]
SPECIALS = ["<pad>", "<bos>", "<eos>"]
VOCAB = {tok: i for i, tok in enumerate(SPECIALS + CHARS)}
VOCAB_SIZE = len(VOCAB)

_COMMON = dict(vocab_size=VOCAB_SIZE, max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2)
_DECODER = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4)

# family name -> (config class, model class, config keys)
FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", dict(**_DECODER, num_key_value_heads=2)),
    "mistral": ("MistralConfig", "MistralForCausalLM", dict(**_DECODER, num_key_value_heads=2, sliding_window=5)),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", dict(**_DECODER, num_key_value_heads=2)),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", dict(**_DECODER, num_key_value_heads=2, head_dim=8)),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", dict(
        **_DECODER, num_key_value_heads=2, head_dim=8, sliding_window=4,
        attn_logit_softcapping=5.0, final_logit_softcapping=3.0, query_pre_attn_scalar=8)),
    "gemma3_text": ("Gemma3TextConfig", "Gemma3ForCausalLM", dict(
        **_DECODER, num_key_value_heads=1, head_dim=8, sliding_window=4, query_pre_attn_scalar=8,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"])),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", dict(n_embd=32, n_layer=3, n_head=4, n_positions=64)),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(
        **_DECODER, use_parallel_residual=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5})),
    "gpt_neox_sequential": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(
        **_DECODER, use_parallel_residual=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5})),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", dict(**_DECODER, num_key_value_heads=2)),
}
_MOE = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=24)
# Families whose flow is checked in test_flow (and Mixtral's capture in test_capture_parity); the support matrix
# (tests/test_support_matrix.py) checks the capture of all of them.
FLOW_FAMILIES = {
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", dict(
        **_DECODER, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2)),
    "qwen2_moe": ("Qwen2MoeConfig", "Qwen2MoeForCausalLM", dict(  # layer 1 dense: routed and dense layers mixed
        **_DECODER, **_MOE, num_key_value_heads=2, shared_expert_intermediate_size=40, mlp_only_layers=[1])),
    "qwen3_moe": ("Qwen3MoeConfig", "Qwen3MoeForCausalLM", dict(
        **_DECODER, **_MOE, num_key_value_heads=2, head_dim=8, norm_topk_prob=True)),
    "olmoe": ("OlmoeConfig", "OlmoeForCausalLM", dict(**_DECODER, **_MOE, num_key_value_heads=2)),
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", dict(**_DECODER, num_key_value_heads=2)),
    "cohere": ("CohereConfig", "CohereForCausalLM", dict(**_DECODER, num_key_value_heads=2, logit_scale=0.5)),
    "stablelm": ("StableLmConfig", "StableLmForCausalLM", dict(**_DECODER, num_key_value_heads=2)),
    "starcoder2": ("Starcoder2Config", "Starcoder2ForCausalLM", dict(**_DECODER, num_key_value_heads=2, sliding_window=5)),
    "phi": ("PhiConfig", "PhiForCausalLM", dict(**_DECODER)),
    "granite": ("GraniteConfig", "GraniteForCausalLM", dict(
        **_DECODER, num_key_value_heads=2, residual_multiplier=0.5, logits_scaling=2.0, embedding_multiplier=3.0,
        attention_multiplier=0.3)),
    "gemma": ("GemmaConfig", "GemmaForCausalLM", dict(**_DECODER, num_key_value_heads=1, head_dim=8)),
    # attention computed inside the module: routed through the interface by the adapter's shim
    "gptj": ("GPTJConfig", "GPTJForCausalLM", dict(n_embd=32, n_layer=3, n_head=4, n_inner=48, rotary_dim=4,
                                                   n_positions=64)),
    "falcon": ("FalconConfig", "FalconForCausalLM", dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                                         multi_query=True, parallel_attn=True)),
}


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer over printable ASCII that adds a BOS token."""
    tok = Tokenizer(models.WordLevel(VOCAB, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>")
    fast._tokenizer.post_processor = None
    return fast


class BosTokenizer:
    """Wraps the tiny tokenizer so encoding prepends BOS, as real tokenizers of Llama/Gemma do."""

    def __init__(self):
        self.inner = tiny_tokenizer()
        self.pad_token_id, self.eos_token_id, self.bos_token_id = 0, 2, 1

    def __call__(self, text, add_special_tokens=True):
        ids = self.inner(text, add_special_tokens=False)["input_ids"]
        return {"input_ids": ([self.bos_token_id] if add_special_tokens else []) + ids}

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=False):
        return "".join(self.inner.convert_ids_to_tokens(list(ids)))


def tiny_config(family: str):
    """The family's tiny config, with every key checked to exist on the config."""
    config_cls, _, keys = {**FAMILIES, **FLOW_FAMILIES}[family]
    settings = {**_COMMON, **keys}
    config = getattr(transformers, config_cls)(**settings)
    for key, value in settings.items():
        assert hasattr(config, key), f"{family}: config has no attribute {key!r}"
        assert getattr(config, key) == value, f"{family}: {key} = {getattr(config, key)!r}, expected {value!r}"
    return config


def tiny_model(family: str, seed: int = 0, attn_implementation: str = "eager"):
    """A tiny fp32 model with fixed-seed random weights (biases and norms perturbed so they matter)."""
    _, model_cls, _ = {**FAMILIES, **FLOW_FAMILIES}[family]
    config = tiny_config(family)
    config._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    model = getattr(transformers, model_cls)(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:  # norms and biases: move them off their trivial init
                p.add_(0.1 * torch.randn_like(p))
    return model


def save_tiny(family: str, path):
    """Save a tiny model of ``family`` with the tiny tokenizer as an HF directory (what ``--model DIR`` reads)."""
    tiny_model(family).save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path
