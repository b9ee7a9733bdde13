"""Run-folder views: a finished sweep's or profile's summary tables (its stored summary.json) as plain data."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from lmxray.errors import LmxrayError
from lmxray.experiments.store import read_summary
from lmxray.experiments.sweep_summary import SUMMARY_SCHEMA
from lmxray.views.base import View


@dataclass
class SweepView(View):
    """What `lmxray sweep` prints after a run and with ``--summary RUN``.

    A ``categories`` row (one per category, then ``all``) and a ``length_groups`` row ("same length", "length
    differs") hold: category, n_pairs, peak_layer / first_layer / area with ``_lo``/``_hi`` 95% bounds, n_never,
    mean_js, bottleneck_layer, bottleneck_share, n_expected, n_hit_intended; category rows also n_length_mismatched,
    mean_js_matched and mean_js_mismatched. Null where a mean has no values.
    """

    run: str  # the run folder
    run_stats: dict | None  # after a run: {computed, resumed, seconds}; None when read back with --summary
    command: str
    schema: int
    model: str
    pairs: int
    layers: int
    threshold: float  # JS above this marks the first divergence layer
    align: str  # how key positions of the two prompts were paired: tokens, start or end
    categories: list[dict]
    length_groups: list[dict]
    length_split: dict  # n_matched, n_mismatched, mean JS of each, ratio, ratio_within_categories

    def to_dict(self) -> dict:
        """The `sweep --json` payload: ``run_stats`` only after a run, as before the view layer."""
        return _without_empty_stats(super().to_dict())


@dataclass
class ProfileView(View):
    """What `lmxray profile` prints after a run and with ``--summary RUN``.

    A ``corpora`` row holds: corpus, samples, tokens, truncated, most_sensitive_layers (by the variance of mean |Δ|
    across samples) and most_sensitive_layers_relative (by std / mean).
    """

    run: str
    run_stats: dict | None
    command: str
    model: str
    layers: int
    max_tokens: int  # samples were cut to this many tokens
    corpora: list[dict]

    def to_dict(self) -> dict:
        """The `profile --json` payload: ``run_stats`` only after a run, as before the view layer."""
        return _without_empty_stats(super().to_dict())


def sweep_view(folder: Path | str, run_stats: dict | None = None) -> SweepView:
    """The summary of the sweep run in ``folder``; ``run_stats``: the run that just finished, if any."""
    summary = read_summary(folder, "sweep")
    if summary.get("schema") != SUMMARY_SCHEMA:
        raise LmxrayError(f"{folder} holds a sweep summary of another lmxray version (no length split)",
                          f"rerun the sweep with --out {folder} --fresh")
    return _build(SweepView, folder, run_stats, summary, "sweep")


def profile_view(folder: Path | str, run_stats: dict | None = None) -> ProfileView:
    """The summary of the profile run in ``folder``; ``run_stats``: the run that just finished, if any."""
    summary = read_summary(folder, "profile")
    rows = summary.get("corpora")
    if isinstance(rows, list) and all(isinstance(r, dict) for r in rows):  # summaries before the relative ranking
        summary["corpora"] = [{**r, "most_sensitive_layers_relative": r.get("most_sensitive_layers_relative", [])}
                              for r in rows]
    return _build(ProfileView, folder, run_stats, summary, "profile")


def _build(cls, folder, run_stats: dict | None, summary: dict, command: str):
    """``cls`` from the stored summary's fields; a summary missing one is refused with the way to rewrite it."""
    names = [f.name for f in fields(cls) if f.name not in ("run", "run_stats")]
    missing = [n for n in names if n not in summary]
    if missing:
        raise LmxrayError(f"{folder}'s {command} summary has no {', '.join(missing)}",
                          f"rerun the {command} with --out {folder} --fresh")
    return cls(run=str(folder), run_stats=run_stats, **{n: summary[n] for n in names})


def _without_empty_stats(data: dict) -> dict:
    if data["run_stats"] is None:
        del data["run_stats"]
    return data
