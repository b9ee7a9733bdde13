"""ArchSpec: a declarative description of one architecture family.

Module paths are dotted attribute paths (``"model.layers"``), relative to the
causal-LM module for model-level parts and to one decoder layer for the rest.
Shared code reads these fields; it never branches on the model type.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ArchSpec:
    family: str  # human name, e.g. "llama"
    model_types: tuple[str, ...]  # HF config.model_type values this spec covers
    layers: str  # model-level path to the list of decoder layers
    final_norm: str | None  # model-level path to the norm before the unembedding (None: the model has none)
    unembed: str  # model-level path to the unembedding (lm head)
    attention: str  # layer-level path to the attention module (calls the attention interface)
    attn_contribution: str | None  # layer-level module whose output is what attention adds to the residual
    mlp_contribution: str | None  # layer-level module whose output is what the MLP adds to the residual
    mlp_down: str | None  # layer-level path to the MLP's output projection; its input is the MLP hidden state
    norm_kind: str = "rms"  # "rms" or "layer"
    mlp_kind: str = "glu"  # "glu" (gate * up) or "plain" (act(up))
    final_proj: str | None = None  # model-level module between the final norm and the unembedding (OPT's project_out)
    attention_layers: tuple[int, ...] | None = None  # the layers that attend (hybrid models); None: every layer
    uniform_heads: bool = True  # every layer's q/k/v have one shape (False: key/value heads or widths vary by layer,
    # so the per-head query/key/value summaries, one array each, are not kept)
    inspected: bool = False  # found by inspecting the model (capture only): no flow maps are declared
    # Models whose attention computes itself (GPT-J, Falcon): a function the loader binds to each attention module,
    # in place of its method ``shim_method``, that hands q/k/v to transformers' attention interface instead
    attention_shim: Callable | None = None
    shim_method: str = "forward"
    parallel_residual: bool = False  # attention and MLP read the same residual (GPT-NeoX)
    parallel_residual_attr: str | None = None  # config attribute that overrides `parallel_residual` when present
    post_norms: bool = False  # norms applied to the attention / MLP outputs (Gemma 2/3)
    learned_positions: bool = False  # absolute position embeddings added to the input (GPT-2)
    logit_softcap_attr: str | None = None  # config attribute holding a final-logit softcap
    logit_scale_attr: str | None = None  # config attribute the logits are multiplied by (Cohere)
    logit_divisor_attr: str | None = None  # config attribute the logits are divided by (Granite)
    vocab_limit_attr: str | None = None  # config attribute: the head keeps only the first N logits (padded vocab)
    # Paths and flags the residual decomposition (lmxray.flow) reads; layer-level unless noted.
    input_norm: str | None = "input_layernorm"  # norm before attention (None: the layer has none, OLMo 2)
    mlp_norm: str | None = "post_attention_layernorm"  # norm before the MLP (None: the layer has none)
    attn_post_norm: str | None = None  # norm applied to the attention output (Gemma 2/3)
    mlp_post_norm: str | None = None  # norm applied to the MLP output (Gemma 2/3)
    value_proj: str = "self_attn.v_proj"  # module whose weight holds W_V (alone or fused with q/k)
    value_rows: str = "all"  # "all"; "last": the last kv_heads*d_head rows (fused q|k|v); "per_head_last": [q|k|v] per head
    out_proj: str = "self_attn.o_proj"  # attention output projection W_O
    mlp_up: str = "mlp.up_proj"  # up projection (plain MLPs: the first projection)
    up_rows: str = "all"  # "all"; "last": the last d_mlp rows (fused gate|up)
    mlp_act: str = "mlp.act_fn"  # activation module: on the gate (GLU) or on the up projection (plain)
    norm_eps_attr: str = "variance_epsilon"  # epsilon attribute of the norm modules
    kv_heads_attr: str | None = None  # attention-module attribute with the key/value head count, where the config's
    # is not what the layer uses (multi-query Falcon); None: the config's
    norm_weight_offset: float = 0.0  # norms scale by (offset + weight): 1.0 for Gemma
    residual_multiplier_attr: str | None = None  # config attribute scaling what attention and the MLP add (Granite)
    # Mixture of experts (layer-level; a layer without the experts module is dense and uses the MLP paths above)
    moe_experts: str | None = None  # experts module of transformers' experts interface (3-D gate_up/down weights)
    moe_shared: str | None = None  # a shared expert every token goes through (a GLU MLP: up_proj, down_proj, act_fn)
    moe_shared_gate: str | None = None  # linear map whose sigmoid scales the shared expert (Qwen2-MoE)

    def logit_factor(self, config) -> float:
        """What the model's head multiplies the unembedding's output by (a scale, or one over a divisor), else 1."""
        scale = getattr(config, self.logit_scale_attr, None) if self.logit_scale_attr else None
        divisor = getattr(config, self.logit_divisor_attr, None) if self.logit_divisor_attr else None
        return (scale or 1.0) / (divisor or 1.0)

    def final_logits(self, logits, config):
        """What the model's head does after the unembedding: keep the real vocabulary, scale or divide, then
        softcap (each where the config says)."""
        factor = self.logit_factor(config)
        cap = getattr(config, self.logit_softcap_attr, None) if self.logit_softcap_attr else None
        limit = getattr(config, self.vocab_limit_attr, None) if self.vocab_limit_attr else None
        if limit:
            logits = logits[..., :limit]
        if factor != 1.0:
            logits = logits * factor
        if cap:
            logits = (logits / cap).tanh() * cap
        return logits

    def is_moe(self, block) -> bool:
        """Whether a decoder layer routes its MLP through experts (MoE models may keep dense layers)."""
        return self.moe_experts is not None and has_path(block, self.moe_experts)

    def attends(self, layer: int) -> bool:
        """Whether model layer ``layer`` has an attention module (every layer, except in hybrid models)."""
        return self.attention_layers is None or layer in self.attention_layers

    def uses_parallel_residual(self, config) -> bool:
        """Whether this model's layers run attention and MLP in parallel (the config may switch it)."""
        if self.parallel_residual_attr is None:
            return self.parallel_residual
        return bool(getattr(config, self.parallel_residual_attr, self.parallel_residual))


def get_path(root, path: str):
    """Follow a dotted attribute path (integers index into module lists)."""
    obj = root
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def has_path(root, path: str) -> bool:
    """Whether a dotted attribute path leads somewhere (to a value other than None)."""
    try:
        return get_path(root, path) is not None
    except (AttributeError, IndexError):
        return False


def bind_attention(hf_model, spec: ArchSpec, attn_implementation: str) -> None:
    """Route a self-computing attention through the attention interface: bind the spec's shim to every attention
    module, with the registered function it calls (idempotent; nothing to do for most models)."""
    if spec.attention_shim is None:
        return
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    function = ALL_ATTENTION_FUNCTIONS[attn_implementation]
    for block in get_path(hf_model, spec.layers):
        module = get_path(block, spec.attention)
        module.__dict__["lmxray_attention"] = function
        module.__dict__[spec.shim_method] = types.MethodType(spec.attention_shim, module)


HF_DECODER = dict(layers="model.layers", final_norm="model.norm", unembed="lm_head", attention="self_attn",
                  attn_contribution="self_attn", mlp_contribution="mlp", mlp_down="mlp.down_proj")


def hf_decoder(**fields) -> ArchSpec:
    """A spec on transformers' usual decoder layout (model.layers, model.norm, lm_head, self_attn, mlp.down_proj,
    attention and MLP outputs added as they are); ``fields`` add to it or override it."""
    return ArchSpec(**{**HF_DECODER, **fields})
