"""The random-init twin: a model's config and tokenizer with fresh seeded weights, the untrained baseline.

One function serves every command that puts a model beside its twin (maps --twin, report --twin and
--head-scores, heads' random baseline) and the server. From a spec it loads like ``load("random:SPEC")``;
from a loaded model it builds the twin in memory from that model's config, with the same weights.
"""

from __future__ import annotations

import copy
import re

from lmxray.errors import LmxrayError
from lmxray.models.model import Model, Origin

_RANDOM_NAME = re.compile(r"^random:(.*)@seed\d+$")


def random_twin(model_or_spec: Model | str, seed: int = 0, *, device: str = "auto", dtype: str = "auto",
                progress=None) -> Model:
    """The random-init twin of a model spec (``random:`` prefix optional) or of a loaded ``Model``.

    A loaded model's twin shares its tokenizer and sits on its device in its dtype (``device`` and ``dtype``
    apply to a spec only); both ways give the weights ``load(spec, init="random", seed=seed)`` gives.
    """
    from lmxray.models.loader import load

    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise LmxrayError(f"seed must be an integer in 0..2**63-1, got {seed!r}", "pass e.g. seed=0",
                          params=("seed",))
    if isinstance(model_or_spec, str):
        return load(model_or_spec, device=device, dtype=dtype, init="random", seed=seed,
                    progress=progress)
    if not isinstance(model_or_spec, Model):
        raise LmxrayError(f"model_or_spec must be a model spec or a loaded Model, got {type(model_or_spec).__name__}",
                          'pass e.g. "smollm2" or the Model that lmxray.load returned', params=("model_or_spec",))
    return _twin_of(model_or_spec, seed)


def twin_name(name: str, seed: int) -> str:
    """``random:NAME@seedN`` for a model named NAME (a twin's own name gives the same base)."""
    match = _RANDOM_NAME.match(name)
    return f"random:{match.group(1) if match else name}@seed{seed}"


def _twin_of(model: Model, seed: int) -> Model:
    """Fresh weights from ``model``'s config, drawn as the loader draws them (seeded CPU generator)."""
    from transformers import AutoModelForCausalLM

    from lmxray.capture.attention import register
    from lmxray.models.loader import model_info, seeded

    config = copy.deepcopy(model.hf.config)
    config._attn_implementation = register()
    dtype = next(model.hf.parameters()).dtype
    with seeded(seed):
        hf = AutoModelForCausalLM.from_config(config, dtype=dtype)
    hf = hf.to(model.device).eval()
    origin = None if model.origin is None else Origin(model.origin.path, "random", seed)
    info = model_info(hf.config, twin_name(model.info.name, seed), "random", model.info.sha256, dtype)
    return Model(hf, model.tokenizer, model.spec, info, origin)
