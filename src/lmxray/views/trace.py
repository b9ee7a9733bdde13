"""The trace summary view: model, prompt, tokens, prediction, top-k, and the convergence at the prediction position."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from lmxray.analysis.convergence import ConvergenceRow, Summary, convergence, summarize
from lmxray.errors import LmxrayError
from lmxray.trace.types import Trace
from lmxray.views.base import View


@dataclass
class ConvergenceView(View):
    """Convergence rows (every key position, largest mass first) and the summary metrics of one trace."""

    position: int
    n_layers: int  # captured layers the mass is summed over
    n_heads: int
    rows: list[ConvergenceRow]
    summary: Summary


@dataclass
class TraceView(View):
    """What `lmxray trace` shows: the trace's identity and prediction, then its convergence."""

    model: dict
    prompt: str
    tokens: list[str]
    token_ids: list[int]
    position: int
    predicted_token: int
    predicted_text: str
    confidence: float
    top_k: list[dict]  # {token_id, text, prob}, best first
    expected_attention: dict[str, list[int]]  # query position (as text) -> expected key positions
    convergence: ConvergenceView | None  # None (with ``note``) only from ``trace_view(..., strict=False)``
    out: str | None = None  # where the trace was written, if it was
    note: str | None = None  # why there is no convergence (the trace has no attention at its position)

    def to_dict(self) -> dict:
        """The `trace --json` payload: convergence rows and summary at the top level, as before the view layer."""
        data = super().to_dict()
        conv, out = data.pop("convergence") or {"rows": None, "summary": None}, data.pop("out")
        return {**data, "convergence": conv["rows"], "summary": conv["summary"], "out": out}


def convergence_view(trace: Trace) -> ConvergenceView:
    """The convergence rows and summary of ``trace`` (analysis.convergence), arranged for rendering."""
    return ConvergenceView(position=trace.position, n_layers=len(trace.layers), n_heads=trace.model.n_heads,
                           rows=convergence(trace), summary=summarize(trace))


def trace_view(trace: Trace, out: Path | str | None = None, strict: bool = True) -> TraceView:
    """The summary view of one trace; ``out``: the file it was saved to. Not ``strict``: no attention gives a note."""
    try:
        conv, note = convergence_view(trace), None
    except LmxrayError as e:
        if strict:
            raise
        conv, note = None, f"no convergence table: {e}"
    return TraceView(
        model=asdict(trace.model), prompt=trace.prompt, tokens=list(trace.tokens), token_ids=list(trace.token_ids),
        position=trace.position, predicted_token=trace.predicted_token, predicted_text=trace.predicted_text,
        confidence=trace.confidence, top_k=[asdict(s) for s in trace.top_k],
        expected_attention={str(q): list(keys) for q, keys in trace.expected_attention.items()},
        convergence=conv, out=None if out is None else str(out), note=note,
    )
