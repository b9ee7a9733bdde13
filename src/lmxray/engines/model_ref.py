"""How to load a model, as data: the driver sends it to every worker, which loads the same weights once.

The driver itself needs only a *card* of the model: its tokenizer, config and
identity on weightless ("meta") tensors, so a 70B sweep's driver encodes and
checks prompts without holding the model. Workers report their own identity
with every batch and the driver checks that it matches the card.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch

from lmxray.errors import LmxrayError
from lmxray.models.loader import load, model_info, pick_device, pick_dtype, random_name, split_random
from lmxray.models.model import Model


@dataclass(frozen=True)
class ModelRef:
    """A model spec with its load options; ``device_map`` spreads it over several devices (placement.py)."""

    spec: str
    device: str = "auto"
    dtype: str = "auto"
    init: str = "pretrained"
    seed: int = 0
    device_map: str | dict | None = None

    def load(self, progress: Callable[[str], None] | None = None) -> Model:
        """The model, loaded (and spread by the device map) on this machine's devices."""
        if self.device_map is None:
            return load(self.spec, device=self.device, dtype=self.dtype, init=self.init, seed=self.seed,
                        progress=progress)
        from lmxray.engines.placement import load_placed, spread

        dtype = str(pick_dtype(self.dtype, self.home())).removeprefix("torch.")
        if split_random(self.spec, self.init)[1] == "pretrained":  # each weight read to its device
            card = self.card() if isinstance(self.device_map, dict) else None
            return load_placed(partial(load, self.spec, dtype=dtype, progress=progress), self.device_map, card)
        # random weights are made on the host, then each block is moved to its device
        model = load(self.spec, device="cpu", dtype=dtype, init=self.init, seed=self.seed, progress=progress)
        return spread(model, self.device_map)

    def home(self, gpus: float | None = None) -> torch.device:
        """The device a worker computes on: the one asked for, or (auto) CUDA when the worker has GPUs.
        ``gpus``: the GPUs each worker is given; None for this machine's own devices."""
        if self.device != "auto" or gpus is None:
            return pick_device(self.device)
        return torch.device("cuda" if gpus > 0 else "cpu")

    def card(self, gpus: float | None = None) -> Model:
        """The model without weights: tokenizer, config and identity, for a driver that never runs it."""
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        from lmxray.adapters import check_scope, spec_for
        from lmxray.capture.attention import register
        from lmxray.models.sources import resolve

        spec, init = split_random(self.spec, self.init)
        dtype = pick_dtype(self.dtype, self.home(gpus))
        resolved = resolve(spec)
        offline = dict(trust_remote_code=False, local_files_only=True)
        try:
            config = AutoConfig.from_pretrained(resolved.path, **offline)
            tokenizer = AutoTokenizer.from_pretrained(resolved.path, **offline)
        except (OSError, ValueError, KeyError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise LmxrayError(f"cannot load the model in {resolved.path}: {reason}",
                              "check that its files are complete") from None
        check_scope(config)
        config._attn_implementation = "eager"  # as load() builds it, then switched to lmxray's attention
        with torch.device("meta"):
            hf = AutoModelForCausalLM.from_config(config, dtype=dtype)
        attn = register()
        hf.set_attn_implementation(attn)
        arch = spec_for(hf, attn)  # an adapter, or inspection (which cannot probe weightless modules)
        name = resolved.name if init == "pretrained" else random_name(resolved.name, self.seed)
        source = resolved.source if init == "pretrained" else "random"
        return Model(hf.eval(), tokenizer, arch, model_info(hf.config, name, source, resolved.sha256, dtype))
