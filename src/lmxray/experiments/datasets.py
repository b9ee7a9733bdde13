"""Dataset readers for sweeps (prompt pairs), profiles (text corpora) and batches (prompts), with file:line errors.

Pairs, corpora and prompts come from JSONL, CSV or Parquet files, folders of them
or local ``datasets`` folders (records.py). Every problem in a user's file is one
LmxrayError naming the file, the line (or row) and the field; nothing is skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lmxray.errors import LmxrayError
from lmxray.experiments.records import Where, is_data_file, is_hf_dataset, read_rows, read_text
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
class Prompt:
    """One prompt of ``lmxray batch``; ``where`` is ``file:line`` (or ``file row N``) for messages."""

    id: str
    text: str
    where: str


@dataclass(frozen=True)
class Sample:
    """One text of a corpus; ``where`` is ``file`` or ``file:line`` for messages."""

    id: str
    text: str
    where: str


def read_pairs(path: str | Path) -> list[Pair]:
    """Read pairs from a JSONL, CSV or Parquet file, a folder of them or a datasets folder, refusing bad rows and
    duplicate ids."""
    path = Path(path)
    if not (path.is_dir() or is_data_file(path)):
        if not path.exists() or device_kind(path) is not None:
            read_text(path)  # "does not exist", "is a character device", ...
        raise LmxrayError(f"{path}: unsupported pair file type '{path.suffix}'",
                          f"use a .jsonl, .csv or .parquet file or a folder of them, or a shipped set: "
                          f"{', '.join(SHIPPED_PAIR_SETS)}")
    pairs, first = [], {}
    for where, row in read_rows(path, required=PAIR_FIELDS):
        pair = _pair(where, row)
        if pair.id in first:
            raise LmxrayError(f"{where}: duplicate id '{pair.id}' (first at {first[pair.id].relative_to(where)})",
                              "give every pair a unique id")
        first[pair.id] = where
        pairs.append(pair)
    if not pairs:
        raise LmxrayError(f"{path}: no pairs in the file", "add rows with id, category, intended, contradictory")
    return pairs


def pair_source(spec: str | Path | None) -> Path:
    """The pair file a sweep reads: a path, a shipped set's name (``contexts``, ``length-matched``) or None (``contexts``)."""
    if spec is None:
        return SHIPPED_PAIRS
    return SHIPPED_PAIR_SETS.get(str(spec), Path(spec))


def _pair(where: Where, row: dict) -> Pair:
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


def _positions(where: Where, value) -> tuple[int, ...] | None:
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
    """A .txt of blank-line separated samples, rows with ``text`` (a JSONL, CSV or Parquet file, a folder of them, a
    datasets folder), or a folder of other text files (one sample each)."""
    path = Path(path)
    kinds = "a folder of text files, a .txt, or a .jsonl, .csv or .parquet file or folder of them"
    if device_kind(path) is not None:
        raise LmxrayError(f"corpus '{name}': {path} is {device_kind(path)}, not a text file", f"pass {kinds}")
    if path.is_dir() and not is_hf_dataset(path) and not _only_data_files(path):
        samples = [Sample(f"{name}:{i}", text, str(f)) for i, (f, text) in enumerate(_dir_texts(path))]
    elif path.suffix.lower() == ".txt":
        samples = [Sample(f"{name}:{i}", text, f"{path}:{line}")
                   for i, (line, text) in enumerate(_paragraphs(read_text(path)))]
    elif path.is_dir() or is_data_file(path):
        samples = [Sample(f"{name}:{i}", text, str(where))
                   for i, (where, text) in enumerate(_row_texts(path))]
    elif not path.exists():
        raise LmxrayError(f"corpus '{name}': {path} does not exist", f"pass {kinds}")
    else:
        raise LmxrayError(f"corpus '{name}': unsupported file type '{path.suffix}' ({path})", f"pass {kinds}")
    if not samples:
        raise LmxrayError(f"corpus '{name}' ({path}) is empty", "add at least one non-empty text")
    return samples


def read_prompts(path: str | Path) -> list[Prompt]:
    """Prompts for ``lmxray batch``: a .txt (one a line), or rows with ``text`` and an optional ``id`` (a JSONL, CSV
    or Parquet file, a folder of them, a datasets folder); ids are unique, a row without one is named by its place."""
    path = Path(path)
    if path.suffix.lower() == ".txt":
        rows = ((Where(path, n), {"text": line}) for n, line in enumerate(read_text(path).splitlines(), start=1)
                if line.strip())
    elif path.is_dir() or is_data_file(path):
        rows = read_rows(path, required=("text",))
    else:
        if not path.exists():
            read_text(path)  # "does not exist", or what else keeps it from being read
        raise LmxrayError(f"{path}: unsupported prompt file type '{path.suffix}'",
                          "pass a .txt (one prompt a line), or a .jsonl, .csv or .parquet file or folder of them")
    prompts, first = [], {}
    for number, (where, row) in enumerate(rows):
        text = _text_field(where, row)
        pid = row.get("id", f"p{number:06d}")
        if isinstance(pid, int) and not isinstance(pid, bool):
            pid = str(pid)
        if not isinstance(pid, str) or not pid.strip():
            raise LmxrayError(f"{where}: field 'id' must be a non-empty string", "give the row an id or omit it")
        if pid in first:
            raise LmxrayError(f"{where}: duplicate id '{pid}' (first at {first[pid].relative_to(where)})",
                              "give every prompt a unique id")
        first[pid] = where
        prompts.append(Prompt(pid, text, str(where)))
    if not prompts:
        raise LmxrayError(f"{path}: no prompts in it", "add at least one non-empty prompt")
    return prompts


def parse_corpus_spec(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` (or just PATH, named after the file) as (name, path)."""
    name, sep, path = spec.partition("=")
    if not sep:
        name, path = Path(spec).stem, spec
    if not name.strip() or not path.strip():
        raise LmxrayError(f"--corpus '{spec}' is not NAME=PATH", "write it like --corpus cpp=src/")
    return name.strip(), Path(path)


def _only_data_files(folder: Path) -> bool:
    """Whether a folder's (non-hidden) files are all JSONL, CSV or Parquet: then its rows are the samples."""
    files = [p for p in folder.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.relative_to(folder).parts)]
    return bool(files) and all(is_data_file(p) for p in files)


def _dir_texts(root: Path):
    for f in sorted(p for p in root.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.parts)):
        text = read_text(f)
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


def _row_texts(path: Path):
    for where, row in read_rows(path, required=("text",)):
        yield where, _text_field(where, row)


def _text_field(where, row: dict) -> str:
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        state = "is missing" if text is None else "must be a non-empty string"
        raise LmxrayError(f"{where}: field 'text' {state}", "give every row a non-empty 'text'")
    return text
