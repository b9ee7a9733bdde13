"""Find what capture needs in a model that has no adapter, by inspecting its modules.

The decoder layers are the module list as long as the config's layer count; the
attention modules are those whose class calls transformers' attention interface
(``ALL_ATTENTION_FUNCTIONS``); the unembedding is ``get_output_embeddings()``;
the final norm is the last norm the layers' parent holds (not an embedding norm). A
model that cannot be traced this way (an encoder, an encoder-decoder, a
multimodal model, a state-space model, attention computed outside the
interface) is refused in one line that says why. Flow's linear maps cannot be
inspected: they stay with the adapters.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect

import torch
from torch import nn

from lmxray.adapters.base import ArchSpec, get_path
from lmxray.errors import LmxrayError

NO_FIX = "lmxray traces decoder-only models whose attention goes through transformers' attention interface " \
         "(see docs/architectures.md, or run: lmxray models --support)"
_MODALITIES = ("vision", "audio", "image", "speech", "video")
_POST_MLP_NORMS = ("post_feedforward", "post_mlp", "post_ffn", "post_moe")
# config attribute transformers' causal-LM heads read -> the spec field it fills, in every family that has it
ADDS_UP_TOL = 0.05  # relative: bf16 rounding of a correct sum stays far below, a wrong guess is of order 1
_FINAL_NORMS = ("norm", "ln_f", "norm_f", "final_layernorm", "final_layer_norm", "final_norm")
_QUERY_NAMES = ("q_proj", "query", "qkv", "c_attn", "project_q", "q_lin")  # a query projection: softmax attention
_SCALED_OUTPUTS = ("residual_multiplier", "scale_depth")  # config attributes that scale what a layer adds
_LOGIT_ATTRS = {"final_logit_softcapping": "logit_softcap_attr", "logits_soft_cap": "logit_softcap_attr",
                "logit_scale": "logit_scale_attr", "logits_scaling": "logit_divisor_attr",
                "logits_mup_width_multiplier": "logit_divisor_attr",  # divides the (bias-free) head's input
                "unpadded_vocab_size": "vocab_limit_attr"}


def scope_problem(config) -> str | None:
    """Why a config's model type is not a decoder-only text model (None when it is), from the config and
    transformers' own registries of model types."""
    from transformers.models.auto import modeling_auto as auto

    kind = config.model_type
    others = [name for name, value in vars(config).items()
              if hasattr(value, "to_dict") and any(m in name for m in _MODALITIES)]
    if kind in auto.MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES or kind in auto.MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES \
            or others:
        return "a multimodal model (its language model reads other inputs too)"
    fields = {f.name for f in dataclasses.fields(config)} if dataclasses.is_dataclass(config) else set()
    cross = "is_decoder" in fields and any("cross_attention" in name for name in fields - {"add_cross_attention"})
    if getattr(config, "is_encoder_decoder", False) or kind in auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES \
            or kind in auto.MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES or cross:
        return "an encoder-decoder model (its decoder cross-attends to an encoder)"
    if kind in auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES or kind in auto.MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES \
            or {"is_decoder", "add_cross_attention"} <= fields:
        return "an encoder family (bidirectional attention; its causal-LM head is a decoder flag on an encoder)"
    return None


def check_scope(config) -> None:
    """Refuse, before any weight is loaded, a model type that is not a decoder-only text model."""
    problem = scope_problem(config)
    if problem is not None:
        raise LmxrayError(f"cannot trace model type '{config.model_type}': it is {problem}", NO_FIX)


def discover(hf_model, attn_implementation: str) -> ArchSpec:
    """A capture-only spec for ``hf_model`` (loaded with ``attn_implementation``), or a one-line refusal."""
    config = hf_model.config
    kind = config.model_type
    check_scope(config)
    n_layers = config.get_text_config().num_hidden_layers
    found = _layer_list(hf_model, n_layers)
    if found is None:
        raise LmxrayError(f"cannot trace model type '{kind}': no list of its {n_layers} decoder layers was found",
                          NO_FIX)
    layers_path, layers = found
    paths = [_attention_paths(layer) for layer in layers]
    attending = [i for i, p in enumerate(paths) if p]
    if not attending:
        raise LmxrayError(f"cannot trace model type '{kind}': {_why_no_attention(layers[0])}", NO_FIX)
    shimmed = any("lmxray_attention" in vars(m) for m in layers.modules())  # adapters/legacy.py bound a shim
    if config._attn_implementation != attn_implementation and not shimmed:
        raise LmxrayError(f"cannot trace model type '{kind}': it does not accept transformers' registered attention "
                          f"functions (it runs '{config._attn_implementation}' attention)", NO_FIX)
    many = next((i for i, p in enumerate(paths) if len(p) > 1), None)
    if many is not None:
        raise LmxrayError(f"cannot trace model type '{kind}': layer {many} has {len(paths[many])} attention modules "
                          f"({', '.join(paths[many])}); lmxray records one per layer", NO_FIX)
    where = {paths[i][0] for i in attending}
    if len(where) > 1:
        raise LmxrayError(f"cannot trace model type '{kind}': its layers hold attention at different places "
                          f"({', '.join(sorted(where))})", NO_FIX)
    attention = where.pop()
    head = hf_model.get_output_embeddings()
    unembed = next((name for name, m in hf_model.named_modules() if m is head), None) if head is not None else None
    if unembed is None:
        raise LmxrayError(f"cannot trace model type '{kind}': it has no output embedding (lm head)", NO_FIX)
    per_layer = [_contributions(layers[i], attention) for i in attending]
    attn_out, mlp_out, mlp_down = (paths[0] if len(set(paths)) == 1 else None for paths in zip(*per_layer))
    text = config.get_text_config()
    if any(getattr(text, attr, None) not in (None, 1, 1.0) for attr in _SCALED_OUTPUTS) \
            or "residual" in inspect.signature(type(get_path(layers[attending[0]], attention)).forward).parameters:
        attn_out = mlp_out = None  # outputs scaled before they are added, or the residual added inside (BLOOM)
    weightless = any(p.is_meta for p in hf_model.parameters())  # a driver's card: its workers probe the weights
    if attn_out is not None and mlp_out is not None and not weightless \
            and not _adds_up(hf_model, layers, attending, attn_out, mlp_out):
        attn_out = mlp_out = None  # the guessed modules do not output what the layer adds
    shapes = {(getattr(m, "head_dim", None), getattr(m, "num_key_value_groups", None))
              for m in (get_path(layers[i], attention) for i in attending)}
    return ArchSpec(
        uniform_heads=len(shapes) == 1,
        family=kind, model_types=(kind,), layers=layers_path, final_norm=_final_norm(hf_model, layers_path),
        final_proj=_final_proj(hf_model, layers_path, unembed), unembed=unembed, attention=attention, attn_contribution=attn_out, mlp_contribution=mlp_out,
        mlp_down=mlp_down, attention_layers=None if len(attending) == n_layers else tuple(attending), inspected=True,
        **{field: attr for attr, field in _LOGIT_ATTRS.items() if getattr(text, attr, None)},
    )


@functools.cache
def calls_attention_interface(cls: type) -> bool:
    """Whether a module class (or a transformers model class it inherits from) calls the attention interface."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("transformers.models."):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if "ALL_ATTENTION_FUNCTIONS" in source:
            return True
    return False


def _layer_list(hf_model, n_layers: int) -> tuple[str, nn.ModuleList] | None:
    """(path, list) of the decoder layers: the shortest-path module list of ``n_layers`` entries that holds
    attention, else the shortest one of that length."""
    lists = [(name, m) for name, m in hf_model.named_modules()
             if isinstance(m, nn.ModuleList) and len(m) == n_layers and name]
    if not lists:
        return None
    attending = [(name, m) for name, m in lists if any(_attention_paths(layer) for layer in m)]
    return min(attending or lists, key=lambda item: item[0].count("."))


def _attention_paths(layer: nn.Module) -> list[str]:
    """Layer-level paths of the modules that call the attention interface (outermost only)."""
    out: list[str] = []
    for name, m in layer.named_modules():
        calls = calls_attention_interface(type(m)) or "lmxray_attention" in vars(m)
        if name and calls and not any(name.startswith(p + ".") for p in out):
            out.append(name)
    return out


def _why_no_attention(layer: nn.Module) -> str:
    """The reason a layer without an interface-calling module cannot be traced."""
    own = [type(m).__name__ for _, m in layer.named_modules() if "attention" in type(m).__name__.lower()
           and any(q in name.lower() for name, _ in m.named_modules() for q in _QUERY_NAMES)]
    if own:
        return f"its attention ({own[0]}) is computed inside the module, not through transformers' attention interface"
    mixer = next((type(m).__name__ for name, m in layer.named_children() if not _is_norm(m) and
                  any(True for _ in m.parameters())), type(layer).__name__)
    return f"it has no attention: a state-space or recurrent model ({mixer})"


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, (nn.LayerNorm, nn.GroupNorm)) or "norm" in type(module).__name__.lower()


def _final_norm(hf_model, layers_path: str) -> str | None:
    """The norm the layers' parent applies after its layers: its last norm not named for the embeddings or the
    input, else its last norm (None when there is none)."""
    parent_path, _, layers_name = layers_path.rpartition(".")
    parent = hf_model.get_submodule(parent_path)
    norms = [name for name, child in parent.named_children() if _is_norm(child)]
    named_final = [name for name in norms if not any(word in name for word in ("emb", "input", "pre", "per_layer"))]
    usual = [name for name in named_final if name in _FINAL_NORMS]
    chosen = usual or named_final or norms  # LFM calls its final norm embedding_norm
    return f"{parent_path}.{chosen[-1]}" if chosen else None


def _final_proj(hf_model, layers_path: str, unembed: str) -> str | None:
    """A module between the final norm and the unembedding: the layers' parent's output projection (OPT's
    project_out), or a prediction head the causal LM holds beside its base model; None when there is none."""
    parent_path = layers_path.rpartition(".")[0]
    parent = hf_model.get_submodule(parent_path)
    out = [f"{parent_path}.{name}" for name, child in parent.named_children()
           if isinstance(child, nn.Linear) and "out" in name]
    base = layers_path.split(".")[0]
    beside = [name for name, child in hf_model.named_children()
              if name not in (base, unembed.split(".")[0]) and any(True for _ in child.parameters())]
    found = out + beside
    return found[0] if len(found) == 1 else None


def _contributions(layer: nn.Module, attention: str) -> tuple[str | None, str | None, str | None]:
    """(module whose output attention adds, the same for the MLP, the MLP's output projection), None where the
    layer does not make it plain. Post-norm layers (a norm after the MLP) add their post-norms' outputs."""
    top = attention.split(".")[0]
    children = [(name, m) for name, m in layer.named_children()
                if name != top and not isinstance(m, nn.Dropout) and any(True for _ in m.parameters())]
    norms = [name for name, m in children if _is_norm(m)]
    others = [(name, m) for name, m in children if not _is_norm(m)]
    mlp_name, mlp = others[0] if len(others) == 1 else (None, None)
    down = None if mlp is None else _down_projection(mlp_name, mlp)
    if len(others) > 1 and all(isinstance(m, nn.Linear) for _, m in others):  # OPT: fc1, fc2 held by the layer
        mlp_name = down = others[-1][0]
    post_mlp = [n for n in norms if n.startswith(_POST_MLP_NORMS)]
    if post_mlp:
        post_attn = [n for n in norms if n.startswith("post_att")]
        return (post_attn[0] if len(post_attn) == 1 else None), post_mlp[0], down
    return top, mlp_name, down


@torch.no_grad()
def _adds_up(hf_model, layers, attending: list[int], attn_out: str, mlp_out: str) -> bool:
    """Whether, on a 4-token probe, each attending layer's output is its input plus the outputs of ``attn_out``
    and ``mlp_out`` (what the trace will call attention and MLP output), within ``ADDS_UP_TOL`` of the residual."""
    seen: dict[tuple[str, int], torch.Tensor] = {}

    def keep(key, pre=False):
        def hook(module, args, *rest):
            value = (args[0] if args else rest[0]["hidden_states"]) if pre else rest[-1]
            seen[key] = (value[0] if isinstance(value, (tuple, list)) else value).float()
        return hook

    handles = []
    for i in attending:
        handles.append(layers[i].register_forward_pre_hook(keep(("in", i), pre=True), with_kwargs=True))
        handles += [get_path(layers[i], path).register_forward_hook(keep((name, i)))
                    for name, path in (("attn", attn_out), ("mlp", mlp_out))]
        handles.append(layers[i].register_forward_hook(keep(("out", i))))
    try:
        device = next(hf_model.parameters()).device
        vocab = hf_model.get_input_embeddings().num_embeddings
        hf_model(input_ids=torch.arange(1, 5, device=device)[None] % vocab, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    for i in attending:
        out = seen[("out", i)]
        parts = [seen[(name, i)].reshape(out.shape) for name in ("in", "attn", "mlp")]
        if float((sum(parts) - out).abs().max()) > ADDS_UP_TOL * max(float(out.abs().max()), 1e-30):
            return False
    return True


def _down_projection(mlp_name: str, mlp: nn.Module) -> str | None:
    """The MLP's last directly held linear layer (its output projection); None for a mixture of experts."""
    if any("expert" in name for name, _ in mlp.named_modules()):
        return None
    linear = [name for name, m in mlp.named_children() if isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D"]
    return f"{mlp_name}.{linear[-1]}" if linear else None
