"""Model spec string → local HF-style directory (config.json + safetensors + tokenizer) + identity.

Specs: a built-in alias (``smollm2``, ``gemma3-270m``), a ``.gguf`` path, an HF model
directory, or a hub id ``org/name`` already in the local Hugging Face cache (never downloaded).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lmxray.errors import LmxrayError
from lmxray.models import builtin, gguf_cache

Progress = Callable[[str], None] | None

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_SPECS_HINT = "pass smollm2, gemma3-270m, a .gguf file, an HF model directory or a cached hub id org/name"


@dataclass(frozen=True)
class ResolvedSource:
    """Where a model's HF-style files are, and its identity."""

    path: Path  # HF-style dir with config + safetensors + tokenizer
    name: str
    source: str  # "builtin" | "gguf" | "hf-dir" | "hf-cache"
    sha256: str | None  # of the GGUF file (or None)


def resolve(spec: str, progress: Progress = None) -> ResolvedSource:
    """Turn a model spec into a local HF-style directory, converting and caching GGUF files."""
    spec = (spec or "").strip()
    if not spec:
        raise LmxrayError("no model given", _SPECS_HINT)
    alias = builtin.canonical(spec)
    if alias is not None:
        return _resolve_builtin(alias, progress)
    path = Path(spec).expanduser()
    if path.exists() or _looks_like_path(spec):
        return _resolve_path(path, progress)
    if _HUB_ID.match(spec):
        return _resolve_hub(spec, progress)
    known = ", ".join(list(builtin.BUILTINS) + list(builtin.ALIASES))
    raise LmxrayError(f"unknown model '{spec}' (built-ins: {known})", _SPECS_HINT)


def _looks_like_path(spec: str) -> bool:
    return (
        spec.lower().endswith(".gguf")
        or spec.startswith((".", "/", "~"))
        or "\\" in spec
        or spec.count("/") > 1
        or os.path.isabs(spec)
    )


def _resolve_builtin(alias: str, progress: Progress) -> ResolvedSource:
    if alias == "gemma3-270m":
        return _resolve_gemma3(progress)
    gguf = builtin.locate_smollm2()
    path, sha = gguf_cache.prepare_gguf(gguf, progress)
    return ResolvedSource(path, alias, "builtin", sha)


def _resolve_gemma3(progress: Progress) -> ResolvedSource:
    name, sha, _ = builtin.gemma3_manifest()
    done = gguf_cache.cached_conversion(sha)
    if done is None:
        assembled = builtin.assemble_gemma3(gguf_cache.cache_dir() / "assembled", progress)
        gguf_cache.remember_sha256(assembled, sha)  # verified while assembling: skip a re-hash
        done, sha = gguf_cache.prepare_gguf(assembled, progress)
        with contextlib.suppress(OSError):  # the conversion is all we need from now on
            assembled.unlink()
    return ResolvedSource(done, "gemma3-270m", "builtin", sha)


def _resolve_path(path: Path, progress: Progress, name: str | None = None) -> ResolvedSource:
    if not path.exists():
        raise LmxrayError(f"model file not found: {path}", "check the path")
    if path.is_dir():
        return _resolve_dir(path, progress, name or path.resolve().name, "hf-dir")
    converted, sha = gguf_cache.prepare_gguf(path, progress)  # checks magic and integrity first
    return ResolvedSource(converted, name or path.stem, "gguf", sha)


def _resolve_dir(d: Path, progress: Progress, name: str, source: str) -> ResolvedSource:
    files = [f for f in d.iterdir() if f.is_file() or f.is_symlink()]
    names = {f.name for f in files}
    if "config.json" not in names:
        ggufs = sorted(f for f in files if f.name.lower().endswith(".gguf"))
        if len(ggufs) == 1:
            converted, sha = gguf_cache.prepare_gguf(ggufs[0], progress)
            return ResolvedSource(converted, name, "gguf", sha)
        if ggufs:
            listed = ", ".join(f.name for f in ggufs[:4])
            raise LmxrayError(f"{d} holds several GGUF files ({listed})", "pass the path of one .gguf file")
        raise LmxrayError(f"{d} is not an HF model directory (no config.json)", _SPECS_HINT)
    if not any(n.endswith(".safetensors") for n in names):
        if any(n.endswith(_PICKLE_SUFFIXES) for n in names):
            raise LmxrayError(
                f"{d} has only pickle weights (pytorch_model.bin); lmxray never unpickles checkpoints",
                "convert it to safetensors (model.save_pretrained(dir, safe_serialization=True)) or pass a .gguf",
            )
        raise LmxrayError(f"{d} has a config.json but no *.safetensors weights", "pass a complete model directory")
    if not names & set(_TOKENIZER_FILES):
        raise LmxrayError(f"{d} has no tokenizer files (tokenizer.json)", "copy the tokenizer files into it")
    return ResolvedSource(d.resolve(), name, source, None)


def _resolve_hub(repo_id: str, progress: Progress) -> ResolvedSource:
    try:
        from huggingface_hub import snapshot_download

        snapshot = snapshot_download(repo_id=repo_id, local_files_only=True)
    except Exception:  # not cached, or not a valid repo id: lmxray never downloads
        raise LmxrayError(
            f"'{repo_id}' is not in the local Hugging Face cache (lmxray never downloads)",
            f"run `hf download {repo_id}` on a connected machine, or pass a local directory or .gguf",
        ) from None
    return _resolve_dir(Path(snapshot), progress, repo_id, "hf-cache")
