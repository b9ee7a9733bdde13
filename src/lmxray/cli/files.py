"""Output files the probe commands write: JSON, atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from lmxray.errors import LmxrayError


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` atomically (temp file in the same directory, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, ensure_ascii=False, allow_nan=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise LmxrayError(f"cannot write {path}: {e.strerror or e}", "choose a writable output path") from e
        raise
