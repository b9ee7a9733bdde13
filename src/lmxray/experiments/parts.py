"""Reading a run folder's Parquet parts: a truncated or corrupt part, or an id stored by two parts, is a named error."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lmxray.errors import LmxrayError
from lmxray.special import special_kind

_SHOWN = 4  # parts named in a duplicate-id error before "and N more"


def read_part(path: Path, columns: list[str] | None = None) -> pa.Table:
    """One part (or some of its columns); a part that cannot be read names itself and how to recompute it."""
    fix = f"delete {path} and rerun the same command to recompute its rows"
    if not path.is_file():  # a FIFO would block the read, a folder is not a part
        raise LmxrayError(f"run part {path} is {special_kind(path) or 'not a regular file'}", fix)
    try:
        table = pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as e:
        raise LmxrayError(f"run part {path} is truncated or corrupt ({_first_line(e)})", fix) from None
    if "id" not in table.column_names:
        raise LmxrayError(f"run part {path} has no 'id' column", fix)
    return table


def read_ids(files: list[Path]) -> set[str]:
    """Ids of every row in the parts; an id found in two parts is an error naming the parts."""
    return set(_owners(files, {f: read_part(f, ["id"]) for f in files}))


def read_parts(files: list[Path]) -> pa.Table | None:
    """All rows of the parts in order, each id in one part only; None when there are no parts."""
    if not files:
        return None
    tables = {f: read_part(f) for f in files}
    _owners(files, tables)
    try:
        return pa.concat_tables(list(tables.values()))
    except pa.ArrowException as e:
        raise LmxrayError(f"the parts in {files[0].parent} have different columns ({_first_line(e)})",
                          "rerun with --fresh to recompute the run folder") from None


def _owners(files: list[Path], tables: dict[Path, pa.Table]) -> dict[str, Path]:
    """id -> the part holding it; raises when some ids sit in more than one part (two runs wrote the folder)."""
    owner: dict[str, Path] = {}
    clashes: dict[Path, set[Path]] = {}
    for f in files:
        for i in set(tables[f].column("id").to_pylist()):
            first = owner.setdefault(i, f)
            if first != f:
                clashes.setdefault(f, set()).add(first)
    if clashes:
        later = sorted(clashes)
        involved = sorted(set(later).union(*clashes.values()))
        names = ", ".join(p.name for p in involved[:_SHOWN]) + (
            f" and {len(involved) - _SHOWN} more" if len(involved) > _SHOWN else "")
        raise LmxrayError(
            f"rows with the same id are stored in more than one part of {files[0].parent} ({names}); "
            "two runs probably wrote this folder at once",
            f"delete the later part{'s' if len(later) > 1 else ''} ({', '.join(p.name for p in later[:_SHOWN])}"
            f"{' ...' if len(later) > _SHOWN else ''}) and rerun to recompute them, or rerun with --fresh")
    return owner


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
