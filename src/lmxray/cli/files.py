"""Output files the probe commands write: JSON, atomically."""

from __future__ import annotations

import json
from pathlib import Path

from lmxray.atomic import atomic_output


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` atomically."""
    with atomic_output(path) as f:
        json.dump(data, f, indent=1, ensure_ascii=False, allow_nan=False)
