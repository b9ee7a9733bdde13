"""One pair of a finished sweep as plain data: its prompts as the run traced them, and the model it ran on.

A sweep records each pair's full prompts in its pairs table since rows layout 3 (experiments/sweep.py); a run
folder from before reads back without them, with a note saying how to record them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lmxray.errors import LmxrayError
from lmxray.experiments.store import MANIFEST, read_summary
from lmxray.views.base import View

PROMPT_COLUMNS = ("intended", "contradictory")
NOT_RECORDED = ("this run predates recorded prompts (its pairs table has no intended and contradictory columns); "
                "rerun the sweep into the same folder with --fresh to record them")


@dataclass
class SweepPairView(View):
    """A sweep pair: its id, category and expected answer, and its two prompts when the run recorded them."""

    run: str  # the run folder
    id: str
    category: str
    model: str  # the model the run folder belongs to, as its run.json names it (random:SPEC@seedN: a random init)
    align: str  # how the sweep paired the two prompts' key positions: tokens, start or end
    recorded: bool  # the run recorded the pair's prompts
    intended: str | None
    contradictory: str | None
    expected: str | None
    note: str | None  # when not recorded: why, and how to record them


def sweep_pair_view(folder: Path | str, pair_id: str) -> SweepPairView | None:
    """The pair ``pair_id`` of the finished sweep in ``folder`` (one row of its pairs table); None when it has none."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    summary = read_summary(folder, "sweep")  # another command's folder, or an unfinished sweep: one line
    path = Path(folder) / "pairs.parquet"
    try:
        names = pq.read_schema(path).names
        columns = ["id", "category", "expected"] + [c for c in PROMPT_COLUMNS if c in names]
        table = pq.read_table(path, columns=columns, filters=pc.field("id") == pair_id)
    except (OSError, ValueError) as e:
        raise LmxrayError(f"cannot read {path} ({e})", "rerun the same `lmxray sweep` command to rewrite it") from None
    if table.num_rows == 0:
        return None
    row = table.slice(0, 1).to_pylist()[0]
    recorded = all(c in names for c in PROMPT_COLUMNS)
    return SweepPairView(run=str(folder), id=row["id"], category=row["category"], model=_run_model(folder),
                         align=summary["align"], recorded=recorded, intended=row.get("intended"),
                         contradictory=row.get("contradictory"), expected=row["expected"],
                         note=None if recorded else NOT_RECORDED)


def _run_model(folder: Path | str) -> str:
    """The model spec the run folder's manifest names (what `lmxray sweep --model` was given)."""
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LmxrayError(f"cannot read {path} ({e})", "rerun the sweep with --fresh to rewrite its run folder") from None
    model = manifest.get("model") if isinstance(manifest, dict) else None
    if not isinstance(model, str):
        raise LmxrayError(f"{path} names no model", "rerun the sweep with --fresh to rewrite its run folder")
    return model
