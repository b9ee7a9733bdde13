"""What the resumable experiment commands (`sweep`, `profile`) share: options, run folders, progress, run stats."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from lmxray.cli.app import err

FreshOpt = Annotated[bool, typer.Option("--fresh", help="Drop earlier results in the run folder and start over.")]
SummaryOpt = Annotated[Optional[Path], typer.Option("--summary", help="Reprint the summary of this run folder and exit.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def model_key(model: str, init: str, seed: int) -> str:
    """How a run folder names its model before it is loaded: the spec, or random:SPEC@seedN."""
    from lmxray.models.loader import random_name, split_random

    spec, init = split_random(model, init)
    return random_name(spec, seed) if init == "random" else spec


def run_folder(command: str, model: str, init: str, seed: int, out_path: Path | None) -> tuple[str, Path]:
    """(model key, run folder): ``--out`` or runs/<command>-<model>."""
    key = model_key(model, init, seed)
    if out_path is not None:
        return key, out_path
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(key).name or key).strip("-") or "model"
    return key, Path("runs") / f"{command}-{slug}"


@contextmanager
def progress_bar(unit: str):
    """A progress bar with an ETA on stderr; yields the ``progress(done, total)`` callback the runners take."""
    columns = (TextColumn(f"[bold]{unit}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(unit, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def print_run_stats(stats: dict, unit: str) -> None:
    """One dim line on stderr: how much was computed now and how much came from an earlier, resumed run."""
    err.print(f"[dim]{stats['computed']} {unit} computed, {stats['resumed']} resumed, {stats['seconds']:.1f} s[/dim]")
