"""Attention-map views: one layer's map (head-summed or one head's), or a layer's per-head maps on one scale.

The values are the trace's stored maps, unchanged, as float32 ``[q_pos, k_pos]``; positions a query cannot see
(k > q) hold 0. ``to_bytes()`` gives the raw little-endian row-major floats for a binary HTTP response.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmxray.errors import LmxrayError
from lmxray.trace.types import Trace
from lmxray.views.base import View

PER_HEAD_FIX = "trace with --per-head (CapturePlan(per_head=True))"
SUMMED_FIX = "trace keeping the head-summed maps (the default; CapturePlan(attention=True))"


@dataclass
class MapView(View):
    """One attention map of one layer: summed over all heads (``head`` None) or of one head."""

    model: str
    tokens: list[str]
    layer: int  # model layer index
    head: int | None  # model head index; None: summed over all the model's heads
    values: np.ndarray  # float32 [q_pos, k_pos]
    vmax: float  # top of the colour scale (0 is the bottom)
    threshold: float | None  # weights below this were cut when the trace was written (read back as 0); None: exact

    def to_bytes(self) -> tuple[bytes, tuple[int, ...]]:
        """The values as little-endian float32, row-major, and their shape ``(q_pos, k_pos)``."""
        return _le_bytes(self.values), tuple(self.values.shape)


@dataclass
class HeadMapsView(View):
    """One layer's per-head maps, every one drawn on the same colour scale ``vmax``."""

    model: str
    tokens: list[str]
    layer: int
    heads: list[int]  # model head index of each map, in the order of ``values``
    values: np.ndarray  # float32 [head, q_pos, k_pos]
    vmax: float
    threshold: float | None

    def to_bytes(self) -> tuple[bytes, tuple[int, ...]]:
        """The values as little-endian float32, row-major, and their shape ``(head, q_pos, k_pos)``."""
        return _le_bytes(self.values), tuple(self.values.shape)


def map_view(trace: Trace, layer: int, head: int | None = None, vmax: float | None = None) -> MapView:
    """Layer ``layer``'s map, summed over heads or of ``head`` (negative indices count from the end).

    ``vmax`` None takes the largest weight of that kind (head-summed, or that head) over every captured layer,
    so the maps of one trace share one scale as a viewer steps through the layers.
    """
    li = trace.layers.index(_resolve(layer, trace.model.n_layers, trace.layers, "layer"))
    if head is None:
        if trace.attention is None:
            raise LmxrayError("the trace has no head-summed attention maps", SUMMED_FIX)
        source, values = trace.attention, trace.attention[li]
    else:
        hi = trace.heads.index(_resolve(head, trace.model.n_heads, _per_head(trace), "head"))
        source, values = trace.attention_heads[:, hi], trace.attention_heads[li, hi]
    return MapView(model=trace.model.name, tokens=list(trace.tokens), layer=trace.layers[li],
                   head=None if head is None else trace.heads[hi], values=np.asarray(values, dtype=np.float32),
                   vmax=_scale(source, vmax), threshold=trace.maps_threshold)


def head_maps_view(trace: Trace, layer: int, heads: list[int] | None = None,
                   vmax: float | None = None) -> HeadMapsView:
    """Layer ``layer``'s per-head maps (``heads``, default every captured head) on one scale.

    ``vmax`` None takes the largest weight among these maps.
    """
    captured = _per_head(trace)
    li = trace.layers.index(_resolve(layer, trace.model.n_layers, trace.layers, "layer"))
    chosen = captured if heads is None else list(dict.fromkeys(
        _resolve(h, trace.model.n_heads, captured, "head") for h in heads))
    if not chosen:
        raise LmxrayError("no heads chosen", "pass heads=None for every captured head, or a list of head indices",
                          params=("heads",))
    values = np.asarray(trace.attention_heads[li, [trace.heads.index(h) for h in chosen]], dtype=np.float32)
    return HeadMapsView(model=trace.model.name, tokens=list(trace.tokens), layer=trace.layers[li], heads=chosen,
                        values=values, vmax=_scale(values, vmax), threshold=trace.maps_threshold)


def _per_head(trace: Trace) -> list[int]:
    """The heads with per-head maps in ``trace``; a trace without them is the user's error, with the fix."""
    if trace.attention_heads is None or not trace.heads:
        raise LmxrayError("the trace has no per-head attention maps", PER_HEAD_FIX)
    return list(trace.heads)


def _resolve(index: int, n: int, available: list[int], what: str) -> int:
    """A model index (negative counts from the end) checked against the model's ``n`` and what the trace holds."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise LmxrayError(f"{what} must be an integer, got {index!r}", f"pass a {what} index such as 0 or -1",
                          params=(what,))
    j = int(index) + n if index < 0 else int(index)
    if not 0 <= j < n:
        raise LmxrayError(f"{what} {index} is out of range (the model has {n} {what}s)",
                          f"pass a {what} in 0..{n - 1} or -1..-{n}", params=(what,))
    if j not in available:
        have = ", ".join(map(str, available)) or "none"
        raise LmxrayError(f"{what} {j} is not in the trace (it has {what}s {have})",
                          f"choose one of those, or trace again capturing {what} {j}", params=(what,))
    return j


def _scale(values: np.ndarray, vmax: float | None) -> float:
    """The colour scale's top: ``vmax`` (checked), or the largest weight in ``values`` (1 when every weight is 0)."""
    if vmax is None:
        top = float(np.nanmax(values)) if np.size(values) else 0.0
        return top if top > 0 else 1.0
    if isinstance(vmax, bool) or not isinstance(vmax, (int, float)) or not 0 < vmax < float("inf"):
        raise LmxrayError(f"vmax must be a finite number > 0, got {vmax!r}", "pass vmax=1.0, or None for the largest "
                          "weight", params=("vmax",))
    return float(vmax)


def _le_bytes(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f4").tobytes()
