"""Logit lens at one position: per layer the top-k tokens, and the rank and probability of the final prediction.

The "final prediction" at a position is the token the full model ranks first
there (the final layer's top-1). Pure functions: a Trace in, rows out; token
texts come from the trace itself, or from an optional ``decode`` callable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from lmxray.errors import LmxrayError
from lmxray.trace.types import Trace

LENS_FIX = "trace again with the logit lens on (CapturePlan(lens=True), the default)"


@dataclass
class LensToken:
    token_id: int
    text: str | None  # None when neither the trace nor ``decode`` knows it
    prob: float


@dataclass
class LensRow:
    """The lens at one model layer for the chosen position."""

    layer: int  # model layer index
    top: list[LensToken]  # best first
    target_prob: float  # probability of the final prediction at this layer
    target_rank: int | None  # its rank in the whole vocabulary (1 = top-1); None: below the stored top-k


@dataclass
class LensSummary:
    """Lens rows for one position, the final prediction, and where it becomes top-1."""

    position: int
    token: str  # the prompt token at `position`
    target_id: int
    target_text: str | None
    rows: list[LensRow]
    first_top1: int | None  # first model layer where the prediction is top-1
    settled: int | None  # first model layer from which it stays top-1 through the last captured layer
    rank_exact: bool  # False for traces without target_rank: ranks beyond top-k are unknown

    def to_dict(self) -> dict:
        return asdict(self)


def lens_table(trace: Trace, position: int = -1, decode: Callable[[int], str] | None = None) -> list[LensRow]:
    """Per captured layer (bottom to top): top-k, target probability and target rank at ``position``."""
    lens = _lens(trace)
    p = _position(trace, position)
    texts = _known_texts(trace, decode)
    target = _target_id(trace, p)
    rows = []
    for li, layer in enumerate(trace.layers):
        ids, probs = lens.top_ids[li, p], lens.top_probs[li, p]
        top = [LensToken(int(i), texts(int(i)), float(pr)) for i, pr in zip(ids, probs) if i >= 0]
        rows.append(LensRow(int(layer), top, float(lens.target_prob[li, p]), _rank(lens, li, p, ids, target)))
    return rows


def first_top1_layer(rows: list[LensRow]) -> int | None:
    """The first model layer whose lens ranks the final prediction first, or None."""
    return next((r.layer for r in rows if r.target_rank == 1), None)


def settled_layer(rows: list[LensRow]) -> int | None:
    """The first model layer from which the final prediction stays top-1 up to the last row, or None."""
    settled = None
    for r in rows:
        if r.target_rank == 1:
            settled = r.layer if settled is None else settled
        else:
            settled = None
    return settled


def lens_summary(trace: Trace, position: int = -1, decode: Callable[[int], str] | None = None) -> LensSummary:
    """``lens_table`` plus the final prediction and the layers where it becomes (and stays) top-1."""
    rows = lens_table(trace, position, decode)
    p = _position(trace, position)
    target = _target_id(trace, p)
    return LensSummary(
        position=p, token=trace.tokens[p], target_id=target, target_text=_known_texts(trace, decode)(target),
        rows=rows, first_top1=first_top1_layer(rows), settled=settled_layer(rows),
        rank_exact=trace.lens.target_rank is not None,
    )


def _lens(trace: Trace):
    if trace.lens is None:
        raise LmxrayError("this trace has no logit lens", LENS_FIX)
    return trace.lens


def _position(trace: Trace, position: int) -> int:
    n = trace.n_tokens
    p = position + n if position < 0 else position
    if not 0 <= p < n:
        raise LmxrayError(f"position {position} is out of range for a prompt of {n} tokens",
                          f"use 0..{n - 1} or -1..-{n}")
    if trace.lens.top_ids.shape[1] <= p or not (trace.lens.top_ids[:, p] >= 0).any():
        raise LmxrayError(f"the trace has no logit lens at position {p}",
                          "trace with that --position, or keep it with CapturePlan(lens_positions=...) (None keeps all)")
    return p


def _target_id(trace: Trace, p: int) -> int:
    """The full model's top-1 at ``p``: the trace's prediction, the final layer's lens top-1, or a layer's where rank is 1."""
    lens = trace.lens
    if p == trace.position and trace.top_k:
        return trace.predicted_token
    if trace.layers and trace.layers[-1] == trace.model.n_layers - 1:
        return int(lens.top_ids[-1, p, 0])
    if lens.target_rank is not None and (top1 := np.flatnonzero(lens.target_rank[:, p] == 1)).size:
        return int(lens.top_ids[top1[0], p, 0])
    raise LmxrayError(f"the trace does not say what the model predicts at position {p}",
                      "trace with the last layer captured, or use the prediction position")


def _rank(lens, li: int, p: int, ids: np.ndarray, target: int) -> int | None:
    if lens.target_rank is not None and lens.target_rank[li, p] >= 1:
        return int(lens.target_rank[li, p])
    hits = np.flatnonzero(ids == target)
    return int(hits[0]) + 1 if hits.size else None


def _known_texts(trace: Trace, decode: Callable[[int], str] | None) -> Callable[[int], str | None]:
    """Token text from ``decode``, else from the trace's own tokens and top-k, else None."""
    known = {s.token_id: s.text for s in trace.top_k}
    known.update(zip(trace.token_ids, trace.tokens))
    if decode is not None:
        return decode
    return known.get
