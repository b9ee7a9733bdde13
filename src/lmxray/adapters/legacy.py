"""Attention shims for older families whose attention modules compute attention themselves (CodeGen, GPT-Neo,
OpenAI GPT, GPT-NeoX-Japanese, BLOOM, MPT, XGLM).

Each shim replaces one method of the attention module with the same computation
up to the scores, then hands post-rotary q/k/v (and any ALiBi or window bias) to
transformers' attention interface, where lmxray's registered function records
them; the result is what the method returned. Inspection then finds the rest of
the model as for any other type. GPT-J and Falcon, which have adapters with flow
maps, carry their own shims (adapters/gptj.py, adapters/falcon.py).
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class Shim:
    """Bind ``function`` as method ``method`` of every module whose class is named ``module_class``."""

    module_class: str
    method: str
    function: Callable


def _interface(self, query, key, value, mask, scaling: float, bias=None):
    """The registered attention function: ``[batch, pos, head, d_head]`` out."""
    return self.lmxray_attention(self, query, key, value, mask, scaling=scaling, position_bias=bias)[0]


def _window_bias(allowed: torch.Tensor, dtype) -> torch.Tensor:
    """An additive bias from a boolean "may attend" buffer (0 where allowed, the dtype's minimum elsewhere)."""
    return torch.zeros((), dtype=dtype, device=allowed.device).masked_fill(~allowed, torch.finfo(dtype).min)


def _scaled_attn(self, query, key, value, attention_mask=None):
    """CodeGen, GPT-NeoX-Japanese ``_attn``: softmax(q k / scale + mask) v; ``[batch, head, pos, d_head]``."""
    scale = self.scale_attn if hasattr(self, "scale_attn") else self.norm_factor
    return _interface(self, query, key, value, attention_mask, 1.0 / float(scale)).transpose(1, 2), None


def _gpt_neo_attn(self, query, key, value, attention_mask=None):
    """GPT-Neo ``_attn``: unscaled scores, its causal (or local-window) buffer as a bias."""
    q_len, k_len = query.shape[-2], key.shape[-2]
    window = _window_bias(self.bias[:, :, k_len - q_len:k_len, :k_len], torch.float32)
    return _interface(self, query, key, value, attention_mask, 1.0, window).transpose(1, 2), None


def _openai_attn(self, q, k, v, attention_mask=None, output_attentions=False):
    """OpenAI GPT ``_attn`` (keys come transposed): scores scaled when ``self.scale``, its causal buffer as a bias."""
    q_len, k_len = q.shape[-2], k.shape[-1]
    causal = self.bias[:, :, :q_len, :k_len] != 0
    scaling = 1.0 / math.sqrt(v.size(-1)) if self.scale else 1.0
    return [_interface(self, q, k.transpose(-1, -2), v, attention_mask, scaling, _window_bias(causal, torch.float32))
            .transpose(1, 2)]


def _bloom_forward(self, hidden_states, residual, alibi, attention_mask, layer_past=None, use_cache=False,
                   output_attentions=False, **kwargs):
    """BLOOM attention: ALiBi (beta * alibi + q k * inv_norm_factor) + mask, then the output projection and the
    residual added, as BloomAttention returns them."""
    from transformers.models.bloom.modeling_bloom import dropout_add

    batch, length = hidden_states.shape[:2]
    query, key, value = self._reshape(self.query_key_value(hidden_states))  # [batch, head, pos, d_head]
    if layer_past is not None:
        key, value = layer_past.update(key, value, self.layer_idx)
    bias = alibi.view(batch, self.num_heads, 1, -1) * self.beta
    context = _interface(self, query, key, value, attention_mask, self.inv_norm_factor, bias)
    output = self.dense(context.reshape(batch, length, self.num_heads * self.head_dim))
    return dropout_add(output, residual, self.hidden_dropout, self.training), None


def _mpt_forward(self, hidden_states, position_bias, past_key_values=None, attention_mask=None, **kwargs):
    """MPT attention: clipped fused qkv, softmax_scale, ALiBi position bias, a boolean "masked" mask."""
    batch, length = hidden_states.shape[:2]
    mixed = self.Wqkv(hidden_states)
    if self.clip_qkv:
        mixed = mixed.clamp(min=-self.clip_qkv, max=self.clip_qkv)
    query, key, value = (x.reshape(batch, length, self.n_heads, self.head_dim).transpose(1, 2)
                         for x in mixed.chunk(3, dim=2))
    if past_key_values is not None:
        key, value = past_key_values.update(key, value, self.layer_idx)
    bias = None
    if position_bias is not None:  # [head, q|1, k], the last rows and keys as MptAttention slices them
        q_from, k_from = max(0, position_bias.size(1) - length), max(0, position_bias.size(2) - key.shape[-2])
        bias = position_bias[:, q_from:, k_from:].unsqueeze(0)
    allowed = None if attention_mask is None else ~attention_mask
    context = _interface(self, query, key, value, allowed, self.softmax_scale, bias)
    return self.out_proj(context.reshape(batch, length, -1)), None


def _xglm_forward(self, hidden_states, key_value_states=None, past_key_values=None, attention_mask=None, **kwargs):
    """XGLM self-attention (a causal LM has no cross-attention): scaled scores + mask."""
    batch, length = hidden_states.shape[:2]
    split = lambda x: x.view(batch, length, -1, self.head_dim).transpose(1, 2)  # noqa: E731
    query, key, value = split(self.q_proj(hidden_states)), split(self.k_proj(hidden_states)), \
        split(self.v_proj(hidden_states))
    if past_key_values is not None:
        key, value = past_key_values.update(key, value, self.layer_idx)
    context = _interface(self, query, key, value, attention_mask, self.scaling)
    return self.out_proj(context.reshape(batch, length, self.embed_dim)), None


SHIMS: dict[str, Shim] = {
    "codegen": Shim("CodeGenAttention", "_attn", _scaled_attn),
    "gpt_neox_japanese": Shim("GPTNeoXJapaneseAttention", "_attn", _scaled_attn),
    "gpt_neo": Shim("GPTNeoSelfAttention", "_attn", _gpt_neo_attn),
    "openai-gpt": Shim("Attention", "_attn", _openai_attn),
    "bloom": Shim("BloomAttention", "forward", _bloom_forward),
    "mpt": Shim("MptAttention", "forward", _mpt_forward),
    "xglm": Shim("XGLMAttention", "forward", _xglm_forward),
}


def bind_shim(hf_model, attn_implementation: str) -> bool:
    """Bind the model type's shim to its attention modules (idempotent); whether the type has one."""
    shim = SHIMS.get(hf_model.config.model_type)
    if shim is None:
        return False
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    function = ALL_ATTENTION_FUNCTIONS[attn_implementation]
    for module in hf_model.modules():
        if type(module).__name__ == shim.module_class:
            module.__dict__["lmxray_attention"] = function
            module.__dict__[shim.method] = types.MethodType(shim.function, module)
    return True
