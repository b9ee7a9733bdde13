"""Everything the HTML report of a prompt needs from a model: its trace, the twin's maps and head scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lmxray.analysis.heads import HeadScores
from lmxray.capture.plan import CapturePlan
from lmxray.errors import LmxrayError
from lmxray.trace.types import Trace

# the twin's trace feeds only the map grid: per-head maps, nothing else
TWIN_PLAN = CapturePlan(per_head=True, attention=False, row_stats=False, components=(), lens=False, top_k=1)


@dataclass
class ReportRun:
    """What ``render.report.build_report`` takes besides the figure choices."""

    trace: Trace  # per-head maps kept, so the report can draw the map grid
    twin: Trace | None  # the random-init twin's trace of the same prompt (per-head maps only)
    head_scores: HeadScores | None  # with z-scores against ``baseline_seeds`` random-init twins
    decode: Callable[[int], str]  # token id -> text, for the lens


def run_report(model, prompt: str, *, expect: dict | None = None, position: int = -1, top_k: int = 5,
               twin: bool = False, head_scores: bool = False, baseline_seeds: int = 3, seed: int = 0) -> ReportRun:
    """Trace ``prompt`` keeping per-head maps; with ``twin`` the twin of seed ``seed`` traces it too; with
    ``head_scores`` every head is scored against the twins of seeds ``seed + 1 .. seed + baseline_seeds``."""
    from lmxray.probes.heads import head_scores_vs_baseline, probe_set, random_twins
    from lmxray.probes.twins import random_twin

    if isinstance(baseline_seeds, bool) or not isinstance(baseline_seeds, int) or baseline_seeds < 1:
        raise LmxrayError(f"baseline_seeds must be an integer of at least 1, got {baseline_seeds!r}",
                          "pass e.g. baseline_seeds=3", params=("baseline_seeds",))
    trace = model.trace(prompt, plan=CapturePlan(per_head=True, top_k=top_k), position=position, expect=expect)
    twin_trace = random_twin(model, seed).trace(prompt, plan=TWIN_PLAN, position=position) if twin else None
    scores = None
    if head_scores:
        twins = random_twins(model, range(seed + 1, seed + 1 + baseline_seeds))
        scores, _ = head_scores_vs_baseline(model, twins, f"random init ({baseline_seeds} seeds)", probe_set(model))
    return ReportRun(trace, twin_trace, scores, model.token_text)
