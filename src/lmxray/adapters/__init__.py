"""Registry of architecture adapters: one small declarative spec per family."""

from lmxray.errors import LmxrayError
from lmxray.adapters import gemma, gpt2, llama, neox, phi3
from lmxray.adapters.base import ArchSpec, get_path

ADAPTERS: tuple[ArchSpec, ...] = (llama.SPEC, gemma.SPEC, gpt2.SPEC, neox.SPEC, phi3.SPEC)
_BY_TYPE = {t: spec for spec in ADAPTERS for t in spec.model_types}
SUPPORTED_MODEL_TYPES = tuple(sorted(_BY_TYPE))


def adapter_for(model_type: str) -> ArchSpec:
    """The spec for an HF ``model_type``; a clear error listing the supported ones otherwise."""
    try:
        return _BY_TYPE[model_type]
    except KeyError:
        raise LmxrayError(
            f"unsupported architecture '{model_type}'",
            f"lmxray supports: {', '.join(SUPPORTED_MODEL_TYPES)}",
        ) from None


__all__ = ["ADAPTERS", "ArchSpec", "SUPPORTED_MODEL_TYPES", "adapter_for", "get_path"]
