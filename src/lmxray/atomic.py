"""Atomic output files: write a temporary file beside the target, then rename it; only a regular file is replaced.

An existing target that is a directory, device, FIFO or socket is refused before
any work and left untouched. A symlink is written through: its final target is
replaced (it must be a regular file or missing) and the link itself stays.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator

from lmxray.errors import LmxrayError
from lmxray.special import special_kind

__all__ = ["atomic_output", "atomic_write", "output_target", "replace_regular", "special_kind", "fsync_dir"]


def output_target(path) -> Path:
    """The path a write to ``path`` replaces: ``path`` itself, or a symlink's final target.

    Raises LmxrayError when that path exists and is not a regular file (a device,
    FIFO, socket, directory, or a symlink loop); nothing is touched.
    """
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    kind = special_kind(target)
    if kind is None:
        return target
    via = f" (the target of the symlink {path})" if target != path else ""
    if kind == "a symlink":
        raise LmxrayError(f"cannot write {path}: it is a symlink that loops", "remove the link or choose another path")
    raise LmxrayError(f"cannot write {target}{via}: it is {kind}, not a regular file",
                      "choose another output path; lmxray only replaces regular files")


def replace_regular(tmp, target: Path) -> None:
    """Rename ``tmp`` onto ``target``, checking again just before that ``target`` is still a regular file or absent."""
    kind = special_kind(target)
    if kind is not None:
        raise LmxrayError(f"cannot write {target}: it is {kind}, not a regular file",
                          "choose another output path; lmxray only replaces regular files")
    os.replace(tmp, target)


@contextmanager
def atomic_output(path, mode: str = "w") -> Iterator[IO]:
    """Yield a file open on a temporary sibling of ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    target = output_target(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".tmp")
    except OSError as e:
        raise LmxrayError(f"cannot write {path}: {e.strerror or e}", "choose a writable output path") from None
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
        replace_regular(tmp, target)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise LmxrayError(f"cannot write {path}: {e.strerror or e}", "choose a writable output path") from e
        raise


TMP_PREFIX = ".tmp-"


def atomic_write(path, write: Callable[[str], None]) -> None:
    """Call ``write(temp_path)`` on a temporary file beside ``path``, fsync it, rename it into place."""
    target = output_target(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=TMP_PREFIX + target.name + ".")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
        replace_regular(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
