"""Files of the CLI: the JSON outputs of the probe commands (written atomically), and telling a trace file from a prompt."""

from __future__ import annotations

import json
from pathlib import Path

from lmxray.atomic import atomic_output, output_target
from lmxray.errors import LmxrayError
from lmxray.special import device_kind

JSONL_SUFFIXES = (".jsonl", ".json")
TRACE_SUFFIXES = JSONL_SUFFIXES + (".safetensors",)  # JSONL for exchange, .safetensors dense and fast
# Suffixes of files that are plainly something else: an output named like one of these is a mistake.
_KNOWN_SUFFIXES = frozenset({".jsonl", ".json", ".png", ".svg", ".pdf", ".jpg", ".jpeg", ".html", ".htm", ".csv",
                             ".gguf", ".safetensors"})


def check_output_suffix(path: Path, what: str, allowed: tuple[str, ...]) -> None:
    """Refuse an output named like another kind of file (a JSONL trace called t.png); unknown suffixes pass."""
    suffix = Path(path).suffix.lower()
    if suffix in _KNOWN_SUFFIXES and suffix not in allowed:
        raise LmxrayError(f"--out {path} ends in {suffix}, but the output is {what}",
                          f"name it {' or '.join(allowed)}")


def check_output(path: Path) -> Path:
    """Refuse, before any work, an output that is not a regular file (a device, FIFO, folder) or cannot be written.

    Returns the path the output will replace: ``path``, or a symlink's final target (the link stays).
    """
    from lmxray.trace.writer import check_writable

    target = output_target(path)
    check_writable(target)
    return target


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` atomically."""
    try:
        with atomic_output(path) as f:
            json.dump(data, f, indent=1, ensure_ascii=False, allow_nan=False)
    except OSError as e:  # the temporary file could not be created
        raise LmxrayError(f"cannot write {path}: {e.strerror or e}", "choose a writable output path") from None


def check_input(path: Path) -> Path:
    """Refuse a trace input that is a device or socket (``/dev/zero`` would be read forever); a pipe is read."""
    kind = device_kind(path)
    if kind is not None:
        raise LmxrayError(f"{path} is {kind}, not a trace file", "pass a trace file (.jsonl) written by `lmxray trace`")
    return path


def is_trace_path(source: str) -> bool:
    """A source names a trace file when it is an existing file or pipe, or ends like one (a missing one is an error).

    An existing folder or device is neither a trace nor a likely prompt: it is refused.
    """
    if not source:  # Path("") is the current folder: say what is really wrong
        raise LmxrayError("the prompt is empty", "pass some text to trace, or a trace file (.jsonl)")
    path = Path(source)
    if path.suffix.lower() in TRACE_SUFFIXES and "\n" not in source:
        check_input(path)
        return True
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except (OSError, ValueError):  # a long prompt is not a valid path
        return False
    if is_dir:
        raise LmxrayError(f"{source} is a folder, not a trace file", "pass a trace file (.jsonl) or a prompt")
    if not exists:
        return False
    check_input(path)
    return True  # a regular file, or a pipe such as <(zcat t.jsonl.gz)
