"""What a cached run is keyed on: a loaded model's identity (what its weights are) and a plan's canonical form."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from lmxray.capture.plan import CapturePlan
from lmxray.errors import LmxrayError
from lmxray.models.model import Model

EDGE_BYTES = 2**20  # a file is fingerprinted by its size, mtime and a hash of its first and last MiB
_WEIGHT_SUFFIXES = (".safetensors",)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json", "merges.txt",
                    "special_tokens_map.json")


def model_identity(model: Model) -> str:
    """Stable hex sha256 of what the weights are: source files, init, seed and dtype.

    Loading the same files twice gives the same id; another file, seed, init or dtype gives another. A model
    wrapped in memory (no files) is identified by its config and the bytes of its weights.
    """
    if not isinstance(model, Model):
        raise LmxrayError(f"model_identity needs an lmxray Model, got {type(model).__name__}",
                          "pass the result of lmxray.load(...)", params=("model",))
    parts = {"dtype": model.info.dtype, "architecture": model.info.architecture, "gguf_sha256": model.info.sha256}
    if model.origin is None:
        parts["in_memory"] = _weights_digest(model)
    else:
        parts.update(init=model.origin.init, seed=model.origin.seed, files=_folder_fingerprint(model.origin.path))
    return _digest(parts)


def plan_key(plan: CapturePlan | dict) -> dict:
    """The JSON-ready canonical form of a plan: every field (defaults filled in), tuples as lists, float threshold."""
    if isinstance(plan, dict):
        plan = CapturePlan.from_dict(plan)
    if not isinstance(plan, CapturePlan):
        raise LmxrayError(f"plan must be a CapturePlan or a dict of its fields, got {type(plan).__name__}",
                          "pass e.g. CapturePlan(per_head=True) or {\"per_head\": true}", params=("plan",))
    out = plan.to_dict()
    out["threshold"] = float(out["threshold"])  # 0 and 0.0 are the same plan
    return out


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _folder_fingerprint(folder: Path) -> dict:
    """config.json's content plus a fingerprint of every weight and tokenizer file in an HF-style folder."""
    folder = Path(folder).resolve()
    try:
        config = (folder / "config.json").read_text(encoding="utf-8")
        files = sorted(f for f in os.listdir(folder) if f.endswith(_WEIGHT_SUFFIXES) or f in _TOKENIZER_FILES)
        return {"path": str(folder), "config": config, "files": {f: _file_fingerprint(folder / f) for f in files}}
    except OSError as e:
        raise LmxrayError(f"cannot read the model's files in {folder}: {e.strerror or e}",
                          "load the model again (its folder changed or vanished)") from None


def _file_fingerprint(path: Path) -> list:
    st = path.stat()
    stamp = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)  # any write changes ctime, even when mtime is set back
    return [st.st_size, st.st_mtime_ns, _edges_digest(str(path.resolve()), st.st_size, stamp)]


@lru_cache(maxsize=256)
def _edges_digest(path: str, size: int, stamp: tuple) -> str:
    """sha256 of a file's first and last MiB; remembered per (path, inode, size, mtime, ctime): lookups only stat."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(EDGE_BYTES))
        if size > EDGE_BYTES:
            f.seek(max(EDGE_BYTES, size - EDGE_BYTES))
            digest.update(f.read(EDGE_BYTES))
    return digest.hexdigest()


def _weights_digest(model: Model) -> str:
    """sha256 over the config, the tokenizer's kind and every parameter and buffer (name, dtype, shape, bytes)."""
    import torch

    digest = hashlib.sha256(model.hf.config.to_json_string(use_diff=False).encode("utf-8"))
    digest.update(type(model.tokenizer).__qualname__.encode("utf-8"))
    for name, t in model.hf.state_dict().items():
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode("utf-8"))
        digest.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
