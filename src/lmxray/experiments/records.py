"""Rows of a user's data set, each with where it came from: JSONL, CSV or Parquet files, folders of them, and
local Hugging Face ``datasets`` folders (written by ``save_to_disk``).

A problem is one LmxrayError naming the file and the line (JSONL, CSV) or row (Parquet, datasets folder).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from lmxray.errors import LmxrayError
from lmxray.special import device_kind

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
DATA_SUFFIXES = JSONL_SUFFIXES + (".csv", ".parquet")
HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")  # what save_to_disk writes
_PARQUET_ROWS = 4096  # rows decoded at a time, so a large Parquet file is never held as Python objects at once


@dataclass(frozen=True)
class Where:
    """A row's origin: file and line (JSONL, CSV) or 1-based row (Parquet, datasets folder)."""

    file: Path
    number: int
    unit: str = "line"  # "line" | "row"

    def __str__(self) -> str:
        return f"{self.file}:{self.number}" if self.unit == "line" else f"{self.file} row {self.number}"

    def relative_to(self, other: "Where") -> str:
        """How a message at ``other`` names this place: ``line 3`` in the same file, else in full."""
        return f"{self.unit} {self.number}" if self.file == other.file else str(self)


def is_data_file(path: Path) -> bool:
    return path.suffix.lower() in DATA_SUFFIXES


def is_hf_dataset(path: Path) -> bool:
    """A folder written by ``datasets``' ``save_to_disk`` (a Dataset or a DatasetDict)."""
    return path.is_dir() and ((path / "dataset_dict.json").is_file() or
                              ((path / "dataset_info.json").is_file() and (path / "state.json").is_file()))


def data_files(folder: Path) -> list[Path]:
    """The JSONL, CSV and Parquet files under a folder (hidden ones skipped), in name order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_data_file(p)
                  and not any(s.startswith(".") for s in p.relative_to(folder).parts))


def read_rows(path: Path, required: tuple[str, ...] = ()) -> Iterator[tuple[Where, dict]]:
    """Every row of a data file, a folder of data files, or a datasets folder, as (where, values).

    An empty CSV cell is left out of the row unless its column is ``required`` (then it reads as "").
    """
    path = Path(path)
    if is_hf_dataset(path):
        yield from _hf_rows(path)
    elif path.is_dir():
        files = data_files(path)
        if not files:
            raise LmxrayError(f"{path} holds no .jsonl, .csv or .parquet files", "pass a folder of data files")
        for f in files:
            yield from read_rows(f, required)
    elif path.suffix.lower() == ".parquet":
        yield from _parquet_rows(path)
    elif path.suffix.lower() == ".csv":
        yield from _csv_rows(path, read_text(path), required)
    else:
        yield from _jsonl_rows(path, read_text(path))


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[Where, dict]]:
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as e:
            raise LmxrayError(f"{path}:{line}: not valid JSON ({e.msg} at column {e.colno})",
                              "write one JSON object per line") from None
        if not isinstance(row, dict):
            raise LmxrayError(f"{path}:{line}: expected a JSON object, got {type(row).__name__}",
                              "write one JSON object per line")
        yield Where(path, line), row


def _csv_rows(path: Path, text: str, required: tuple[str, ...]) -> Iterator[tuple[Where, dict]]:
    """Rows under a header row; a quoted cell may span lines (the row is named by its first line)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return
    end = reader.line_num
    for cells in reader:
        start, end = end + 1, reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            raise LmxrayError(f"{path}:{start}: more cells than header columns", "quote cells that contain commas")
        row = dict(zip(header, cells + [None] * (len(header) - len(cells))))  # a short row's cells are missing
        yield Where(path, start), {k: v for k, v in row.items() if v != "" or k in required}


def _parquet_rows(path: Path) -> Iterator[tuple[Where, dict]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    _check_readable(path)
    try:
        reader = pq.ParquetFile(path)
        number = 0
        for batch in reader.iter_batches(batch_size=_PARQUET_ROWS):
            for row in batch.to_pylist():
                number += 1
                yield Where(path, number, "row"), {k: v for k, v in row.items() if v is not None}
    except (pa.ArrowException, OSError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise LmxrayError(f"{path}: not a readable Parquet file ({reason})", "pass a Parquet, JSONL or CSV file") from None


def _hf_rows(path: Path) -> Iterator[tuple[Where, dict]]:
    try:
        import datasets
    except ImportError:
        raise LmxrayError(f"{path} is a Hugging Face datasets folder, and reading one needs the datasets package",
                          "pip install datasets, or export the data set to JSONL or Parquet") from None
    try:
        data = datasets.load_from_disk(str(path))
    except (OSError, ValueError, FileNotFoundError) as e:
        raise LmxrayError(f"cannot read the datasets folder {path} ({e})", "save it again with save_to_disk") from None
    if isinstance(data, datasets.DatasetDict):
        if len(data) != 1:
            raise LmxrayError(f"{path} holds the splits {', '.join(data)}, not one data set",
                              f"pass one split's folder, e.g. {path / next(iter(data))}")
        path, data = path / next(iter(data)), next(iter(data.values()))
    for number, row in enumerate(data, start=1):
        yield Where(path, number, "row"), {k: v for k, v in row.items() if v is not None}


def read_text(path: Path) -> str:
    """A UTF-8 text file's content, with one-line errors for what cannot be read."""
    _check_readable(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LmxrayError(f"{path} does not exist", "check the path") from None
    except IsADirectoryError:
        raise LmxrayError(f"{path} is a directory, not a file", "pass a file") from None
    except UnicodeDecodeError as e:
        raise LmxrayError(f"{path}: not UTF-8 text (byte {e.start})", "save the file as UTF-8") from None
    except OSError as e:
        raise LmxrayError(f"cannot read {path}: {e.strerror or e}", "check the file's permissions") from None


def _check_readable(path: Path) -> None:
    kind = device_kind(path)
    if kind is not None:  # /dev/zero would be read forever
        raise LmxrayError(f"{path} is {kind}, not a text file", "pass a file")
    if not path.exists():
        raise LmxrayError(f"{path} does not exist", "check the path")
