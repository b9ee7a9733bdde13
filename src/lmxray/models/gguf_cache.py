"""GGUF files → cached HF-style directories (config.json + safetensors + tokenizer).

Conversions live under ``cache_dir()/gguf/<sha256>/`` and appear atomically (a
temp dir renamed into place, with the marker file inside), so an interrupted
conversion never leaves a half cache. Heavy imports (torch, transformers) are lazy.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from lmxray.atomic import atomic_output
from lmxray.errors import LmxrayError
from lmxray.special import special_kind

MARKER = ".lmxray-complete"  # written last, inside the temp dir, before the rename
FORMAT = 1  # bump to invalidate conversions made by an older converter
_STALE_TMP_S = 6 * 3600


def cache_dir() -> Path:
    """The lmxray cache root: ``$LMXRAY_CACHE`` or the platform user cache dir."""
    env = os.environ.get("LMXRAY_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("lmxray"))


def _gguf_root() -> Path:
    return cache_dir() / "gguf"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _index_path() -> Path:
    return _gguf_root() / "index.json"


def _read_index() -> dict:
    path = _index_path()  # a bad $LMXRAY_CACHE is the user's error to see, not an empty index
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as f:
        json.dump(data, f, indent=1, sort_keys=True)


def remember_sha256(path: str | os.PathLike, sha256: str) -> None:
    """Record ``path``'s sha256 in the index, keyed by (resolved path, size, mtime_ns)."""
    p = Path(path).resolve()
    st = p.stat()
    index = _read_index()
    index[str(p)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
    with contextlib.suppress(OSError):  # a read-only cache only costs a re-hash next time
        _write_json_atomic(_index_path(), index)


def gguf_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, from the index when (path, size, mtime_ns) match, else hashed and remembered."""
    known = known_sha256(path)
    if known:
        return known
    digest = sha256_file(path)
    remember_sha256(path, digest)
    return digest


def check_gguf(path: str | os.PathLike) -> None:
    """Raise LmxrayError unless ``path`` is a readable, complete GGUF file."""
    p = Path(path)
    if p.exists() and not p.is_file():
        raise LmxrayError(f"{p} is {special_kind(os.path.realpath(p)) or 'not a regular file'}, not a model file",
                          "pass a .gguf file, an HF model directory or a hub id")
    if not p.is_file():
        raise LmxrayError(f"model file not found: {p}", "check the path")
    with open(p, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise LmxrayError(
            f"{p} is not a GGUF file (bad magic)",
            "pass a .gguf file, an HF model directory or a hub id",
        )
    size = p.stat().st_size
    try:
        from gguf import GGUFReader

        reader = GGUFReader(p)
        for t in reader.tensors:
            end = int(t.data_offset) + int(t.n_bytes)
            if end > size:
                raise ValueError(f"tensor {t.name} ends at byte {end}, file has {size}")
        if not reader.tensors:
            raise ValueError("no tensors")
    except LmxrayError:
        raise
    except Exception as e:  # the reader raises assorted errors on damaged files
        detail = " ".join(str(e).split())[:160] or type(e).__name__
        raise LmxrayError(f"{p} is truncated or corrupt ({detail})", "download it again") from None


def gguf_architecture(path: str | os.PathLike) -> str:
    """The ``general.architecture`` string of a GGUF file ("?" when unreadable)."""
    try:
        from gguf import GGUFReader

        field = GGUFReader(path).fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode()
    except Exception:
        return "?"


def cached_conversion(sha256: str) -> Path | None:
    """The complete conversion for this sha256, or None."""
    target = _gguf_root() / sha256
    try:
        marker = json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return target if marker.get("format") == FORMAT else None


def known_sha256(path: str | os.PathLike) -> str | None:
    """The indexed sha256 of ``path`` if (path, size, mtime_ns) still match, else None."""
    try:
        p = Path(path).resolve()
        st = p.stat()
    except OSError:
        return None
    entry = _read_index().get(str(p))
    if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
        return entry.get("sha256")
    return None


def prepare_gguf(path: str | os.PathLike, progress: Callable[[str], None] | None = None) -> tuple[Path, str]:
    """(converted directory, sha256 of the GGUF); converts on the first call only."""
    p = Path(path)
    sha256 = known_sha256(p)
    done = cached_conversion(sha256) if sha256 else None
    if done is not None:
        return done, sha256
    check_gguf(p)
    sha256 = gguf_sha256(p)
    done = cached_conversion(sha256)
    if done is not None:
        return done, sha256
    if progress is not None:
        progress(f"converting {p.name} (one-time, {_estimate(p)})...")
    root = _gguf_root()
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale_tmp(root)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{sha256[:12]}-"))
    target = root / sha256
    try:
        _convert_into(p, tmp)
        _relax_modes(tmp)
        marker = {"format": FORMAT, "sha256": sha256, "file": p.name, "created": time.time()}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1))
        if target.exists() and cached_conversion(sha256) is None:
            shutil.rmtree(target, ignore_errors=True)  # stale format or foreign leftovers
        try:
            os.replace(tmp, target)
        except OSError:
            if cached_conversion(sha256) is None:  # no concurrent winner: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target, sha256


def convert_gguf(path: str | os.PathLike, progress: Callable[[str], None] | None = None) -> Path:
    """Convert a GGUF file to an HF-style directory in the cache (once per sha256); return it."""
    return prepare_gguf(path, progress)[0]


def _estimate(path: Path) -> str:
    seconds = path.stat().st_size / 1e8 * 20  # ~20 s per 100 MB of GGUF on a laptop CPU
    return "~20 s" if seconds <= 30 else f"~{max(1, round(seconds / 60))} min"


def _relax_modes(d: Path) -> None:
    """Give the temp dir and its files the usual umask modes (mkdtemp/mkstemp make them private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(d, 0o777 & ~umask)
    for f in d.iterdir():
        os.chmod(f, 0o666 & ~umask)


def _clean_stale_tmp(root: Path) -> None:
    now = time.time()
    for d in root.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - d.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def _quiet():
    """Silence transformers' warnings and tqdm bars (they go to stderr) for the duration."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        hf_logging.set_verbosity(level)


def _convert_into(path: Path, out: Path) -> None:
    """Dequantize ``path`` to float32 and save model (safetensors) + tokenizer into ``out``.

    Same result as ``from_pretrained(dir, gguf_file=...)`` (checked on SmolLM2), without
    needing ``accelerate``: config from the GGUF, weights via transformers' GGUF loader.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    from lmxray.models.loader import seeded

    folder, name = str(path.parent.resolve()), path.name
    with _quiet():
        try:
            config = AutoConfig.from_pretrained(folder, gguf_file=name, local_files_only=True)
            with seeded(0):  # every weight is overwritten below; the caller's RNG is left alone
                model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            tensors = load_gguf_checkpoint(
                str(path.resolve()), return_tensors=True, model_to_load=model, torch_dtype=torch.float32
            )["tensors"]
        except (ValueError, KeyError, NotImplementedError) as e:
            arch = gguf_architecture(path)
            raise LmxrayError(
                f"cannot convert {path.name}: GGUF architecture '{arch}' is not supported by transformers"
                f" ({' '.join(str(e).split())[:120]})",
                "docs/architectures.md lists the GGUF architectures that load; or use an HF model directory",
            ) from None
        try:
            result = model.load_state_dict(tensors, strict=False)
        except RuntimeError as e:  # shapes the file's config does not give
            raise LmxrayError(f"cannot convert {path.name}: weights do not match the architecture "
                              f"({' '.join(str(e).split())[:160]})", "use an HF model directory for this model") from None
        model.tie_weights()
        state = model.state_dict()
        loaded = {t.data_ptr() for k, t in state.items() if k in tensors}
        missing = [k for k in result.missing_keys if state[k].data_ptr() not in loaded]
        if missing or result.unexpected_keys:
            raise LmxrayError(
                f"cannot convert {path.name}: weights do not match the architecture"
                f" (missing {missing[:3]}, unexpected {result.unexpected_keys[:3]})",
                "use an HF model directory for this model",
            )
        model.save_pretrained(out)
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
        except Exception as e:
            raise LmxrayError(
                f"cannot convert the tokenizer of {path.name} ({' '.join(str(e).split())[:120]})",
                "use an HF model directory for this model",
            ) from None
        tokenizer.save_pretrained(out)
