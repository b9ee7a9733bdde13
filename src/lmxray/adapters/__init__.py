"""Registry of architecture adapters: one small declarative spec per family, inspection for the rest."""

from lmxray.errors import LmxrayError
from lmxray.adapters import (cohere, falcon, gemma, gemma1, gpt2, gptj, granite, llama, mixtral, neox, olmo2, phi, phi3,
                             qwen2_moe, stablelm, starcoder2)
from lmxray.adapters.base import ArchSpec, bind_attention, get_path
from lmxray.adapters.inspection import check_scope, discover
from lmxray.adapters.legacy import bind_shim

ADAPTERS: tuple[ArchSpec, ...] = (llama.SPEC, gemma.SPEC, gemma1.SPEC, gpt2.SPEC, neox.SPEC, phi3.SPEC, phi.SPEC, mixtral.SPEC,
                                  qwen2_moe.SPEC, olmo2.SPEC, cohere.SPEC, stablelm.SPEC, starcoder2.SPEC, granite.SPEC,
                                  gptj.SPEC, falcon.SPEC)
_BY_TYPE = {t: spec for spec in ADAPTERS for t in spec.model_types}
SUPPORTED_MODEL_TYPES = tuple(sorted(_BY_TYPE))


def adapter_for(model_type: str) -> ArchSpec:
    """The adapter for an HF ``model_type``; a clear error listing the adapted ones otherwise."""
    try:
        return _BY_TYPE[model_type]
    except KeyError:
        raise LmxrayError(
            f"no adapter for architecture '{model_type}'",
            f"lmxray has adapters for: {', '.join(SUPPORTED_MODEL_TYPES)}",
        ) from None


def spec_for(hf_model, attn_implementation: str) -> ArchSpec:
    """The model's adapter when its type has one (its attention shim bound, where it has one), else a capture-only
    spec found by inspection."""
    spec = _BY_TYPE.get(hf_model.config.model_type)
    if spec is None:
        bind_shim(hf_model, attn_implementation)  # older types whose attention computes itself (adapters/legacy.py)
        return discover(hf_model, attn_implementation)
    bind_attention(hf_model, spec, attn_implementation)
    return spec


__all__ = ["ADAPTERS", "ArchSpec", "SUPPORTED_MODEL_TYPES", "adapter_for", "check_scope", "get_path", "spec_for"]
