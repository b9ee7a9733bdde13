"""load(spec): resolve a model spec, load it (or its random-init twin) with lmxray's attention function."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Callable

import torch

from lmxray.capture.attention import register
from lmxray.errors import LmxrayError
from lmxray.adapters import check_scope, spec_for
from lmxray.models.model import Model, Origin
from lmxray.trace.types import ModelInfo

RANDOM_PREFIX = "random:"
DEFAULT_MODEL = "smollm2"


def split_random(spec: str, init: str = "pretrained") -> tuple[str, str]:
    """(SPEC, "random") for ``random:SPEC``; any other spec with ``init`` as given."""
    return (spec[len(RANDOM_PREFIX):], "random") if spec.startswith(RANDOM_PREFIX) else (spec, init)


def random_name(name: str, seed: int) -> str:
    """How a model with random weights is named: random:NAME@seedN."""
    return f"{RANDOM_PREFIX}{name}@seed{seed}"


def load(spec: str = DEFAULT_MODEL, *, device: str = "auto", dtype: str = "auto", init: str = "pretrained",
         seed: int = 0, progress: Callable[[str], None] | None = None, placement: dict | None = None) -> Model:
    """Load a model from a spec: a built-in alias, a .gguf file, an HF directory or a cached hub id.

    ``random:SPEC`` (or ``init="random"``) keeps SPEC's config and tokenizer but
    initialises fresh weights with ``seed``: the untrained baseline. ``placement``
    (pretrained weights only): transformers' ``device_map`` and ``offload_folder``,
    so each weight goes from the files to its device (engines/placement.py).
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from lmxray.models.sources import resolve

    if not isinstance(spec, str) or not spec:
        raise LmxrayError(f"spec must name a model, got {spec!r}",
                          'pass "smollm2", a .gguf path, an HF directory or an org/name in the local HF cache')
    spec, init = split_random(spec, init)
    if init not in ("pretrained", "random"):
        raise LmxrayError(f"unknown init {init!r}", 'use init "pretrained" or "random"', params=("init",))
    torch_device = pick_device(device)
    torch_dtype = pick_dtype(dtype, torch_device)
    resolved = resolve(spec, progress=progress)
    offline = dict(trust_remote_code=False, local_files_only=True)  # never the network, without touching os.environ
    with _load_errors(resolved.path):
        config = AutoConfig.from_pretrained(resolved.path, **offline)
    check_scope(config)  # an encoder, encoder-decoder or multimodal model is refused before its weights load
    attn = register()
    with _load_errors(resolved.path), no_progress_bars():
        # built with eager attention (every class has it; some pick their attention classes at init by name),
        # then switched to lmxray's, which models that compute attention themselves keep as eager
        if init == "random":
            config._attn_implementation = "eager"
            with seeded(seed):
                hf = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
        else:
            hf = AutoModelForCausalLM.from_pretrained(
                resolved.path, dtype=torch_dtype, attn_implementation="eager", use_safetensors=True, **offline,
                **(placement or {}),
            )
        tokenizer = AutoTokenizer.from_pretrained(resolved.path, **offline)
    hf = (hf if placement else hf.to(torch_device)).eval()
    hf.set_attn_implementation(attn)
    arch = spec_for(hf, attn)
    name = resolved.name if init == "pretrained" else random_name(resolved.name, seed)
    source = resolved.source if init == "pretrained" else "random"
    origin = Origin(resolved.path, init, seed if init == "random" else None)
    return Model(hf, tokenizer, arch, model_info(hf.config, name, source, resolved.sha256, torch_dtype), origin)


@contextmanager
def seeded(seed: int):
    """Draw from torch's CPU generator seeded with ``seed``, then restore its state (the caller's RNG is untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextmanager
def no_progress_bars():
    """transformers' progress bars off for the duration, as they were afterwards."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextmanager
def _load_errors(path):
    """Turn transformers' loading failures (bad config, corrupt weights) into one-line user errors."""
    from safetensors import SafetensorError

    try:
        yield
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LmxrayError(f"cannot load the model in {path}: {reason}", "check that its files are complete") from e


def from_hf(hf_model: torch.nn.Module, tokenizer, name: str = "in-memory") -> Model:
    """Wrap an already-built HF causal LM (e.g. a tiny random model in a test) for tracing."""
    check_scope(hf_model.config)
    attn = register()
    hf_model.set_attn_implementation(attn)
    arch = spec_for(hf_model, attn)
    dtype = next(hf_model.parameters()).dtype
    return Model(hf_model.eval(), tokenizer, arch, model_info(hf_model.config, name, "in-memory", None, dtype))


def model_info(config, name: str, source: str, sha256: str | None, dtype: torch.dtype) -> ModelInfo:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    n_heads = text.num_attention_heads
    return ModelInfo(
        name=name, source=source, sha256=sha256, architecture=text.model_type,
        n_layers=text.num_hidden_layers, n_heads=n_heads,
        n_kv_heads=getattr(text, "num_key_value_heads", None) or n_heads,
        d_model=text.hidden_size, vocab_size=text.vocab_size, dtype=str(dtype).removeprefix("torch."),
    )


def pick_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is a user error."""
    if not isinstance(device, str):
        raise LmxrayError(f"device must be a string, got {device!r}", 'use "auto", "cpu" or "cuda[:N]"')
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", device):  # mps, meta, xla...: not supported
        raise LmxrayError(f"unknown device {device!r}", "use auto, cpu or cuda[:N]")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise LmxrayError("CUDA was asked for but no CUDA device is available", "use device cpu or auto")
        n = torch.cuda.device_count()
        if int(device.partition(":")[2] or 0) >= n:
            raise LmxrayError(f"there is no {device}: this machine has {n} CUDA device{'s' if n > 1 else ''}",
                              f"use cuda:0..cuda:{n - 1} or device auto")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` is bf16 on CUDA and fp32 on CPU."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in table:
        raise LmxrayError(f"unknown dtype '{dtype}'", f"use auto or one of {', '.join(table)}")
    return table[dtype]

