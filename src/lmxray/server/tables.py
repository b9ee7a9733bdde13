"""Experiment run folders under --runs and their Parquet tables: find them, describe them, read filtered pages.

A folder is an experiment when it holds a ``run.json`` manifest (lmxray.experiments.store). Its tables are
the stored rows (``rows``: the parts, read as one dataset) and each summary table (``<name>.parquet``). Queries
go through pyarrow.dataset with the filters pushed down and stream batch by batch, so memory stays bounded
by a page, not by the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from lmxray.errors import LmxrayError
from lmxray.experiments.store import MANIFEST, SUMMARY_JSON
from lmxray.server.errors import NotFound
from lmxray.server.security import inside

ROWS = "rows"  # the run's stored parts, one dataset
MAX_MANIFEST_BYTES = 2**20
PLAIN_TYPES = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_string,
               pa.types.is_large_string, pa.types.is_null)


@dataclass
class Experiment:
    """One run folder: its name under --runs, its manifest, and whether its summary is written."""

    name: str
    folder: Path
    command: str
    model: str
    finished: bool

    def tables(self) -> dict[str, list[Path]]:
        """Table name -> its Parquet files: ``rows`` (when any part is stored) and every summary table."""
        out = {}
        parts = sorted((self.folder / "parts").glob("part-*.parquet"))
        if parts:
            out[ROWS] = parts
        for path in sorted(self.folder.glob("*.parquet")):
            if path.is_file() and path.stem != ROWS:
                out[path.stem] = [path]
        return out

    def dataset(self, table: str) -> ds.Dataset:
        files = self.tables().get(table)
        if files is None:
            raise NotFound(f"experiment {self.name!r} has no table {table!r}",
                           f"choose one of: {', '.join(self.tables()) or 'none yet'}")
        return ds.dataset([str(f) for f in files], format="parquet")


def experiments(root: Path) -> list[Experiment]:
    """Every experiment folder directly under ``root`` (hidden folders, such as the run store's, left out)."""
    found = []
    for child in sorted(root.iterdir()) if root.is_dir() else ():
        if child.name.startswith(".") or not child.is_dir():
            continue
        experiment = _read(root, child.name)
        if experiment is not None:
            found.append(experiment)
    return found


def experiment(root: Path, name: str) -> Experiment:
    """The experiment folder ``name`` under ``root``; 404 when there is none (or the name leads outside)."""
    found = None if name.startswith(".") else _read(root, name)
    if found is None:
        raise NotFound(f"no experiment {name!r} in the runs folder", "list them with GET /api/experiments")
    return found


def _read(root: Path, name: str) -> Experiment | None:
    try:
        folder = inside(root, name, "experiment")
    except NotFound:
        return None
    manifest = folder / MANIFEST
    if not manifest.is_file() or manifest.stat().st_size > MAX_MANIFEST_BYTES:
        return None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("command"), str):
        return None
    return Experiment(name, folder, data["command"], str(data.get("model", "")), (folder / SUMMARY_JSON).is_file())


def describe(experiment: Experiment) -> list[dict]:
    """Name, row count and columns of each table (from the Parquet footers; no rows are read)."""
    out = []
    for name in experiment.tables():
        dataset = experiment.dataset(name)
        out.append({"name": name, "n_rows": dataset.count_rows(),
                    "columns": [{"name": f.name, "type": str(f.type)} for f in dataset.schema]})
    return out


def query(experiment: Experiment, table: str, columns: list[str] | None, filters: list[dict], limit: int,
          offset: int) -> dict:
    """A page of ``table``'s rows matching every filter: ``columns`` (default all), ``limit`` rows after ``offset``."""
    dataset = experiment.dataset(table)
    schema = dataset.schema
    names = list(dict.fromkeys(columns)) if columns else schema.names
    for name in names + [f["column"] for f in filters]:
        _field(schema, table, name)
    condition = None
    for f in filters:
        term = _condition(schema.field(f["column"]), f["op"], f["value"])
        condition = term if condition is None else condition & term
    n_matched = dataset.count_rows(filter=condition)
    rows, skip = [], offset
    for batch in dataset.to_batches(columns=names, filter=condition):
        if skip >= batch.num_rows:
            skip -= batch.num_rows
            continue
        batch = batch.slice(skip, limit - len(rows))
        skip = 0
        rows += [list(r) for r in zip(*(_plain(column) for column in batch.columns))] if batch.num_rows else []
        if len(rows) >= limit:
            break
    return {"table": table, "columns": names, "rows": rows, "n_matched": n_matched, "limit": limit,
            "offset": offset}


def _field(schema: pa.Schema, table: str, name: str) -> pa.Field:
    if name not in schema.names:
        raise LmxrayError(f"table {table!r} has no column {name!r}", f"use one of: {', '.join(schema.names)}")
    return schema.field(name)


def _condition(field: pa.Field, op: str, value) -> ds.Expression:
    """The filter ``column op value`` as a dataset expression, the value cast to the column's type first."""
    column = pc.field(field.name)
    if op == "in":
        if not isinstance(value, list):
            raise LmxrayError(f"filter 'in' on {field.name!r} needs a list of values, got {value!r}",
                              'pass e.g. {"column": "category", "op": "in", "value": ["a", "b"]}')
        return column.isin(_cast(field, value, many=True))
    if isinstance(value, list):
        raise LmxrayError(f"filter {op!r} on {field.name!r} takes one value, got a list", "use op 'in' for a list")
    if value is None:
        if op not in ("eq", "ne"):
            raise LmxrayError(f"filter {op!r} on {field.name!r} cannot compare with null", "use eq or ne with null")
        return column.is_null() if op == "eq" else column.is_valid()
    scalar = _cast(field, value)
    return {"eq": column == scalar, "ne": column != scalar, "lt": column < scalar, "le": column <= scalar,
            "gt": column > scalar, "ge": column >= scalar}[op]


def _cast(field: pa.Field, value, many: bool = False):
    """``value`` (or each of a list) as the column's type; a value the type cannot hold is a user error."""
    try:
        return pa.array(value).cast(field.type) if many else pa.scalar(value).cast(field.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        raise LmxrayError(f"{value!r} is not a value of column {field.name!r} ({field.type})",
                          f"filter {field.name} with {field.type} values") from None


def _plain(column: pa.Array) -> list:
    """A column as JSON-ready values (types JSON has no form for are given as text)."""
    if not any(is_type(column.type) for is_type in PLAIN_TYPES):
        try:
            column = column.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return [None if v is None else str(v) for v in column.to_pylist()]
    return column.to_pylist()
