"""Tiny random-init configs of any causal-LM model type: its default config, shrunk (2 layers, width 64, 128 tokens).

The support matrix (``lmxray.models.support``) builds one model per type from
these. Only fields the config class declares are set; per-layer lists keep one
of each distinct entry (so a model mixing sliding and full attention keeps both);
``EXTRA`` holds the few settings a type's validation needs beyond the shrink.
"""

from __future__ import annotations

import dataclasses

N_LAYERS = 2
VOCAB = 128
WIDTH = 64
HEADS = 4
D_HEAD = WIDTH // HEADS

# field names -> the small value every config that declares them gets
_SMALL: dict[tuple[str, ...], int] = {
    ("num_hidden_layers", "n_layer", "num_layers", "n_layers"): N_LAYERS,
    ("hidden_size", "n_embd", "d_model", "dim", "embed_dim"): WIDTH,
    ("num_attention_heads", "n_head", "num_heads", "n_heads", "num_attention_heads_per_layer",
     "swa_num_attention_heads"): HEADS,
    ("head_dim", "kv_channels", "attention_head_dim", "swa_head_dim", "index_head_dim"): D_HEAD,
    ("intermediate_size", "ffn_dim", "n_inner", "d_ff", "ffn_hidden_size", "dim_ff"): 96,
    ("moe_intermediate_size", "shared_expert_intermediate_size", "shared_experts_intermediate_size",
     "expert_intermediate_size", "moe_ffn_hidden_size", "expert_ffn_hidden_size"): 32,
    ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts"): 4,
    ("zero_expert_num", "index_n_heads"): 2,
    ("qk_head_dim",): 16,  # qk_nope_head_dim + qk_rope_head_dim
    ("index_topk",): 8,
    ("vocab_size", "vocab_size_per_layer_input"): VOCAB,
    ("hidden_size_per_layer_input",): 16,
    ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len", "seq_length"): 64,
    ("kv_lora_rank", "q_lora_rank"): 16,
    ("qk_rope_head_dim", "qk_nope_head_dim", "rotary_dim", "rotary_emb_dim"): 8,
    ("v_head_dim",): D_HEAD,
    ("first_k_dense_replace",): 1,
    ("sliding_window", "window_size", "attention_window_size"): 4,
    ("n_group", "topk_group"): 1,
}
_AT_MOST = {"num_experts_per_tok": 2, "moe_topk": 2, "num_experts_per_token": 2, "moe_k": 2, "n_shared_experts": 1}
_TOKEN_IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
_EVEN_WHEN_UNSET = ("head_dim",)  # None means "hidden / heads" in some configs and breaks others once shrunk

_HYBRID = ["linear_attention", "full_attention"]
# model type -> settings its config or model needs beyond the generic shrink (each found by building it)
EXTRA: dict[str, dict] = {
    "bamba": {"attn_layer_indices": [1]},  # hybrids: one attention layer among the two
    "jamba": {"attn_layer_period": 2, "attn_layer_offset": 1, "expert_layer_period": 2, "expert_layer_offset": 1},
    "granitemoehybrid": {"layer_types": _HYBRID, "mamba_n_heads": 8, "mamba_d_head": 16, "mamba_d_state": 16},
    "nemotron_h": {"layers_block_type": _HYBRID, "mamba_num_heads": 8, "mamba_head_dim": 16},
    "lfm2_moe": {"layer_types": ["conv", "full_attention"]},
    "deepseek_v2": {"num_experts_per_tok": 2, "n_shared_experts": 1},  # experts on, but no count picked
    "dots1": {"n_routed_experts": 4, "num_experts_per_tok": 2, "n_shared_experts": 1},
    "mamba2": {"num_heads": 8},  # hidden * expand == heads * head_dim
    "gpt_neo": {"attention_types": [[["global", "local"], 1]]},
    "inkling_text": {"swa_num_key_value_heads": 4},  # sliding layers keep more key/value heads, as the default does
    "longcat_flash": {"head_dim": 8},  # its rotary reads head_dim: the rotary part of each head
    "recurrent_gemma": {"block_types": ["recurrent", "attention"]},
    "dbrx": {"attn_config": {"kv_n_heads": 2, "rope_theta": 10000.0, "clip_qkv": 8.0}},  # the default lacks rope_theta
    # multipliers away from 1, so that the matrix checks where they apply
    "granite": {"residual_multiplier": 0.5, "logits_scaling": 2.0, "embedding_multiplier": 3.0,
                "attention_multiplier": 0.3},
    "granite_swa": {"residual_multiplier": 0.5, "logits_scaling": 2.0, "embedding_multiplier": 3.0,
                    "attention_multiplier": 0.3},
    "cohere_compass_text": {"rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 10000.0}}},
}


def tiny_config(model_type: str, attn_implementation: str = "eager"):
    """The default config of ``model_type``, shrunk; raises what the config class raises when it refuses."""
    from transformers import CONFIG_MAPPING

    cls = CONFIG_MAPPING[model_type]
    settings = {**_shrunk(cls, cls()), **EXTRA.get(model_type, {})}
    config = cls(**settings)
    config._attn_implementation = attn_implementation
    return config


def _shrunk(cls, default) -> dict:
    """The settings that shrink one config (sub-configs, such as DBRX's ffn_config, shrunk the same way)."""
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set(vars(default))
    values = {name: _value(default, name) for name in fields}
    n_default = values.get("num_hidden_layers")
    small = {name: value for names, value in _SMALL.items() for name in names}
    settings: dict = {}
    for names, value in _SMALL.items():
        for name in names:
            current = values.get(name)
            if name in fields and (_is_int(current) or (current is None and name in _EVEN_WHEN_UNSET)):
                settings[name] = value
    for name in ("num_key_value_heads", "n_kv_heads", "num_kv_heads", "multi_query_group_num", "kv_n_heads"):
        heads, kv = values.get("num_attention_heads"), values.get(name)
        if name in fields and (_is_int(kv) or (kv is None and name == "num_key_value_heads")):
            # grouped-query attention stays grouped, multi-head stays multi-head
            settings[name] = HEADS // 2 if _is_int(kv) and _is_int(heads) and kv < heads else HEADS
    for name, value in _AT_MOST.items():
        if name in fields and _is_int(values.get(name)):
            settings[name] = min(values[name], value)
    for name, value in _TOKEN_IDS.items():
        current = values.get(name)
        if name in fields and _is_int(current) and current >= VOCAB:
            settings[name] = value
    for name in fields:
        current = values[name]
        if isinstance(current, list) and n_default and len(current) == n_default and name not in settings:
            settings[name] = [small[name]] * N_LAYERS if name in small else _per_layer(current)
        elif hasattr(current, "to_dict") and name not in settings:
            settings[name] = type(current)(**_shrunk(type(current), current))
    return settings


def _value(config, name: str):
    """A config field as stored (a config that varies per layer refuses to answer some attributes globally)."""
    try:
        return getattr(config, name, None)
    except Exception:  # e.g. transformers' AmbiguousGlobalPerLayerAttributeError
        return vars(config).get(name)


def _per_layer(values: list) -> list:
    """A per-layer list for ``N_LAYERS`` layers: its distinct entries in order of first use, repeated."""
    distinct = list(dict.fromkeys(v if not isinstance(v, (list, dict)) else repr(v) for v in values))
    chosen = [values[[v if not isinstance(v, (list, dict)) else repr(v) for v in values].index(d)] for d in distinct]
    return [chosen[i % len(chosen)] for i in range(N_LAYERS)]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
