"""Atomic output files: write to a temporary file beside the target, then rename, so no half-written file remains."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from lmxray.errors import LmxrayError


@contextmanager
def atomic_output(path, mode: str = "w") -> Iterator[IO]:
    """Yield a file open on a temporary sibling of ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise LmxrayError(f"cannot write {path}: {e.strerror or e}", "choose a writable output path") from e
        raise
