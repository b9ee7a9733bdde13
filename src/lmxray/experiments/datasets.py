"""Dataset readers for sweeps (prompt pairs) and profiles (text corpora), with file:line errors.

Every problem in a user's file is one LmxrayError naming the file, the line and
the field; nothing is silently skipped.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from lmxray.errors import LmxrayError
from lmxray.special import device_kind

DATA_DIR = Path(__file__).parent / "data"
SHIPPED_PAIRS = DATA_DIR / "pairs.jsonl"
SHIPPED_LENGTH_MATCHED_PAIRS = DATA_DIR / "pairs_length_matched.jsonl"  # same token count on SmolLM2's tokenizer
SHIPPED_PAIR_SETS = {"contexts": SHIPPED_PAIRS, "length-matched": SHIPPED_LENGTH_MATCHED_PAIRS}
SHIPPED_CORPORA = {
    "cpp": DATA_DIR / "corpora" / "cpp.txt",
    "python": DATA_DIR / "corpora" / "python.txt",
    "finance-news": DATA_DIR / "corpora" / "finance_news.txt",
    "mathematics": DATA_DIR / "corpora" / "mathematics.txt",
}
PAIR_FIELDS = ("id", "category", "intended", "contradictory")  # required
OPTIONAL_PAIR_FIELDS = ("expected", "expected_positions")


@dataclass(frozen=True)
class Pair:
    """One matched prompt pair: the same continuation point in an intended and a contradictory context."""

    id: str
    category: str
    intended: str
    contradictory: str
    expected: str | None = None  # the answer text the intended context calls for
    expected_positions: tuple[int, ...] | None = None  # key positions the prediction should attend to


@dataclass(frozen=True)
class Sample:
    """One text of a corpus; ``where`` is ``file`` or ``file:line`` for messages."""

    id: str
    text: str
    where: str


def read_pairs(path: str | Path) -> list[Pair]:
    """Read pairs from JSONL (one object a line) or CSV (a header row), refusing bad rows and duplicate ids."""
    path = Path(path)
    text = _read_text(path)
    if path.suffix.lower() == ".csv":
        rows = _csv_rows(path, text)
    elif path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        rows = _jsonl_rows(path, text)
    else:
        raise LmxrayError(f"{path}: unsupported pair file type '{path.suffix}'",
                          f"use a .jsonl or .csv file, or a shipped set: {', '.join(SHIPPED_PAIR_SETS)}")
    pairs, first_line = [], {}
    for line, row in rows:
        pair = _pair(path, line, row)
        if pair.id in first_line:
            raise LmxrayError(f"{path}:{line}: duplicate id '{pair.id}' (first at line {first_line[pair.id]})",
                              "give every pair a unique id")
        first_line[pair.id] = line
        pairs.append(pair)
    if not pairs:
        raise LmxrayError(f"{path}: no pairs in the file", "add rows with id, category, intended, contradictory")
    return pairs


def pair_source(spec: str | Path | None) -> Path:
    """The pair file a sweep reads: a path, a shipped set's name (``contexts``, ``length-matched``) or None (``contexts``)."""
    if spec is None:
        return SHIPPED_PAIRS
    return SHIPPED_PAIR_SETS.get(str(spec), Path(spec))


def _jsonl_rows(path: Path, text: str):
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
        yield line, row


def _csv_rows(path: Path, text: str):
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None:
        return
    for row in reader:
        if None in row:
            raise LmxrayError(f"{path}:{reader.line_num}: more cells than header columns",
                              "quote cells that contain commas")
        if not any((v or "").strip() for v in row.values()):
            continue
        yield reader.line_num, {k: v for k, v in row.items() if v != "" or k in PAIR_FIELDS}


def _pair(path: Path, line: int, row: dict) -> Pair:
    where = f"{path}:{line}"
    unknown = set(row) - set(PAIR_FIELDS) - set(OPTIONAL_PAIR_FIELDS)
    if unknown:
        raise LmxrayError(f"{where}: unknown field(s) {sorted(unknown)}",
                          f"use only {', '.join(PAIR_FIELDS + OPTIONAL_PAIR_FIELDS)}")
    values = {}
    for name in PAIR_FIELDS:
        value = row.get(name)
        if name == "id" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            state = "is missing" if value is None else "must be a non-empty string"
            raise LmxrayError(f"{where}: field '{name}' {state}", f"give every row a non-empty '{name}'")
        values[name] = value
    expected = row.get("expected")
    if expected is not None and (not isinstance(expected, str) or not expected.strip()):
        raise LmxrayError(f"{where}: field 'expected' must be a non-empty string", "give the answer text or omit it")
    return Pair(**values, expected=expected, expected_positions=_positions(where, row.get("expected_positions")))


def _positions(where: str, value) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):  # CSV cells hold JSON lists
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise LmxrayError(f"{where}: field 'expected_positions' must be a list of integers",
                          "write it like [0, 4, 5]")
    return tuple(value)


def read_corpus(name: str, path: str | Path) -> list[Sample]:
    """A directory of text files (one sample each), a .txt of blank-line separated samples, or JSONL with ``text``."""
    path = Path(path)
    if device_kind(path) is not None:
        raise LmxrayError(f"corpus '{name}': {path} is {device_kind(path)}, not a text file",
                          "pass a directory of text files, a .txt or a .jsonl file")
    if path.is_dir():
        samples = [Sample(f"{name}:{i}", text, str(f)) for i, (f, text) in enumerate(_dir_texts(path))]
    elif path.suffix.lower() == ".txt":
        samples = [Sample(f"{name}:{i}", text, f"{path}:{line}")
                   for i, (line, text) in enumerate(_paragraphs(_read_text(path)))]
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        samples = [Sample(f"{name}:{i}", text, f"{path}:{line}")
                   for i, (line, text) in enumerate(_jsonl_texts(path))]
    elif not path.exists():
        raise LmxrayError(f"corpus '{name}': {path} does not exist", "pass a directory, a .txt or a .jsonl file")
    else:
        raise LmxrayError(f"corpus '{name}': unsupported file type '{path.suffix}' ({path})",
                          "pass a directory of text files, a .txt or a .jsonl file")
    if not samples:
        raise LmxrayError(f"corpus '{name}' ({path}) is empty", "add at least one non-empty text")
    return samples


def parse_corpus_spec(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` (or just PATH, named after the file) as (name, path)."""
    name, sep, path = spec.partition("=")
    if not sep:
        name, path = Path(spec).stem, spec
    if not name.strip() or not path.strip():
        raise LmxrayError(f"--corpus '{spec}' is not NAME=PATH", "write it like --corpus cpp=src/")
    return name.strip(), Path(path)


def _dir_texts(root: Path):
    for f in sorted(p for p in root.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.parts)):
        text = _read_text(f)
        if text.strip():
            yield f, text


def _paragraphs(text: str):
    """(first line, paragraph) for each run of non-blank lines."""
    start, lines = None, []
    for number, raw in enumerate(text.splitlines() + [""], start=1):
        if raw.strip():
            start = start or number
            lines.append(raw)
        elif lines:
            yield start, "\n".join(lines)
            start, lines = None, []


def _jsonl_texts(path: Path):
    for line, row in _jsonl_rows(path, _read_text(path)):
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            state = "is missing" if text is None else "must be a non-empty string"
            raise LmxrayError(f"{path}:{line}: field 'text' {state}", "give every row a non-empty 'text'")
        yield line, text


def _read_text(path: Path) -> str:
    kind = device_kind(path)
    if kind is not None:  # /dev/zero would be read forever
        raise LmxrayError(f"{path} is {kind}, not a text file", "pass a file")
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
