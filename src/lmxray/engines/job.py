"""What every engine runs: a job's per-batch functions over items that carry their ids, stored part by part.

A job (sweep, profile, batch) says how one batch is computed: ``launch`` queues
its forward pass, ``collect`` turns it into rows. The local loop and the Ray
workers call the same two functions, and every batch's rows become one Parquet
part of the run folder, written by the process that holds the folder's lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from lmxray.atomic import atomic_write


@dataclass(frozen=True)
class Item:
    """One unit of work: the id its rows are stored under, its size in tokens (the longest run first, so padding
    stays small) and what the job's batch function reads."""

    id: str
    size: int
    data: object


@dataclass
class Output:
    """One finished batch: its rows (one part; every row has an ``id``) and files to write beside them, by path
    relative to the run folder."""

    table: pa.Table
    files: dict[str, bytes] = field(default_factory=dict)


class Job(Protocol):
    """The per-batch work of one command. It is pickled to each Ray worker, so it holds only settings."""

    def launch(self, model, items: list[Item]) -> object:
        """Queue the batch's forward pass (on a GPU it runs while the previous batch is collected)."""

    def collect(self, model, launched) -> Output:
        """The batch's rows, once its forward pass is done."""


class Engine(Protocol):
    """Where batches are computed: ``run`` hands every finished batch to ``keep``, in any order."""

    name: str

    def driver_model(self, progress: Callable[[str], None] | None = None):
        """The model the calling process holds: loaded (local), or its weightless card (Ray)."""

    def run(self, job: Job, model, items: list[Item], batch_size: int, keep: Callable[[Output], None]) -> None:
        ...


def identity(model) -> dict:
    """The weights a run folder's rows come from: what a resumed run (or a Ray worker) must load again."""
    return {"name": model.info.name, "sha256": model.info.sha256, "dtype": model.info.dtype}


def run_job(engine: Engine, job: Job, model, items: list[Item], store, batch_size: int,
            progress: Callable[[int, int], None] | None = None) -> dict:
    """Compute every item the run folder does not hold yet and store each batch as one part; returns counts and
    timing. ``store`` must have begun (``RunStore.begin``)."""
    stored = set(store.done_ids())
    pending = sorted((it for it in items if it.id not in stored), key=lambda it: -it.size)  # stable: file order
    total, start = len(items), time.perf_counter()
    finished = total - len(pending)
    if progress:
        progress(finished, total)

    def keep(output: Output) -> None:
        nonlocal finished
        fresh = store_output(store, output, stored)
        finished += fresh
        if progress:
            progress(finished, total)

    if pending:
        engine.run(job, model, pending, batch_size, keep)
    return {"items": total, "computed": len(pending), "resumed": total - len(pending),
            "seconds": time.perf_counter() - start}


def store_output(store, output: Output, stored: set[str]) -> int:
    """Write a batch's files, then its rows as one part, leaving out rows already stored (a batch a Ray worker
    computed twice); returns how many new ids it stored."""
    ids = output.table.column("id")
    fresh = {i for i in ids.to_pylist() if i not in stored}
    if not fresh:
        return 0
    table = output.table if len(fresh) == len(set(ids.to_pylist())) else \
        output.table.filter(pc.is_in(ids, value_set=pa.array(sorted(fresh), type=ids.type)))
    for name, data in output.files.items():
        target = Path(store.folder) / PurePosixPath(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda tmp, data=data: Path(tmp).write_bytes(data))
    store.append(table)  # after its files: a part on disk means every file it names is whole
    stored.update(fresh)
    return len(fresh)
