"""The lens view: per layer the logit lens's top-k and the final prediction's rank and probability at one position."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lmxray.analysis.lens import LensRow, lens_summary
from lmxray.trace.types import Trace
from lmxray.views.base import View


@dataclass
class LensView(View):
    """What `lmxray lens` shows: analysis.lens's summary with the model and prompt it belongs to."""

    model: str
    prompt: str
    position: int
    token: str  # the prompt token at ``position``
    target_id: int  # the final prediction there
    target_text: str | None
    rows: list[LensRow]  # one per captured layer, bottom to top
    first_top1: int | None
    settled: int | None
    rank_exact: bool  # False: ranks beyond the stored top-k are unknown (shown as >k)


def lens_view(trace: Trace, position: int = -1, decode: Callable[[int], str] | None = None) -> LensView:
    """The lens of ``trace`` at ``position`` (token texts from ``decode`` when given)."""
    s = lens_summary(trace, position, decode)
    return LensView(model=trace.model.name, prompt=trace.prompt, position=s.position, token=s.token,
                    target_id=s.target_id, target_text=s.target_text, rows=s.rows, first_top1=s.first_top1,
                    settled=s.settled, rank_exact=s.rank_exact)
