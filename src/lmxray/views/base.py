"""Turning view dataclasses into JSON-ready data: dicts, lists, str, int, float, bool and None only."""

from __future__ import annotations

import dataclasses
import math

import numpy as np


def plain(value):
    """``value`` as JSON-ready data: dataclasses and mappings to dicts (keys as str), sequences and arrays to lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else value
    return value


def finite(value):
    """Plain ``value`` with every non-finite float (inf as well as NaN) replaced by None: for strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


class View:
    """A mixin for view dataclasses: ``to_dict()`` gives the JSON-ready form that ``--json`` prints."""

    def to_dict(self) -> dict:
        return plain(self)
