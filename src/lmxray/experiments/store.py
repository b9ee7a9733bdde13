"""A resumable run folder: a manifest naming its owner, and one atomically written part file per finished batch.

A part appears whole or not at all (temporary file, fsync, rename, fsync of the
folder), so a run killed at any moment — SIGKILL included — loses only the batch
in flight, and the ids found in the parts say exactly what is done: rerunning
never repeats or drops a row. One run at a time holds a folder (see folder_lock).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lmxray.atomic import TMP_PREFIX as _TMP_PREFIX
from lmxray.atomic import atomic_write
from lmxray.errors import LmxrayError
from lmxray.experiments.folder_lock import LOCK_NAME, FolderLock
from lmxray.experiments.parts import read_ids, read_parts
from lmxray.special import special_kind

__all__ = ["RunStore", "atomic_write", "write_tables", "read_summary", "MANIFEST", "SUMMARY_JSON"]

MANIFEST = "run.json"
PARTS = "parts"
FORMAT = "lmxray.run/1"


def write_tables(table: pa.Table, folder: Path, stem: str) -> None:
    """Write ``stem.parquet`` and ``stem.csv`` atomically."""
    import pyarrow.csv as pacsv

    atomic_write(folder / f"{stem}.parquet", lambda tmp: pq.write_table(table, tmp))
    atomic_write(folder / f"{stem}.csv", lambda tmp: pacsv.write_csv(table, tmp))


class RunStore:
    """One run folder, owned by one command and one model; ``settings`` are those that shape stored rows.

    ``with store:`` (or ``begin``) takes the folder's lock; the lock is freed on leaving the block, by
    ``unlock()``, or when the process ends.
    """

    def __init__(self, folder: str | Path, command: str, model: str, settings: dict, schema: int = 1):
        self.folder = Path(folder)
        self.command, self.model, self.settings = command, model, settings
        self.schema = schema  # layout of the stored rows; a folder of another layout is refused
        self.parts = self.folder / PARTS
        self._lock = FolderLock(self.folder)

    def lock(self) -> None:
        """Take the folder's exclusive lock (creating the folder); refused at once if another run holds it."""
        self._lock.acquire()

    def unlock(self) -> None:
        """Free the lock; a folder this run created but never claimed (no manifest) is removed again."""
        unclaimed = not (self.folder / MANIFEST).exists()
        if unclaimed and self._lock.held and self._lock.created_folder:
            try:
                self.parts.rmdir()
            except OSError:
                pass
        self._lock.release(remove_folder=unclaimed)

    def __enter__(self) -> "RunStore":
        self.lock()
        return self

    def __exit__(self, *exc) -> None:
        self.unlock()

    def check(self, fresh: bool = False) -> None:
        """Refuse a folder owned by another command or model, or (unless fresh) made with other settings.

        Writes nothing, so it can run before the model loads.
        """
        if self.folder.exists() and not self.folder.is_dir():
            kind = special_kind(os.path.realpath(self.folder)) or "a file"
            raise LmxrayError(f"{self.folder} is {kind}, not a run folder",
                              "pass a new or existing run folder to --out")
        manifest = self._manifest()
        if manifest is None:
            if self.folder.exists() and any(c.name != LOCK_NAME for c in self.folder.iterdir()):
                raise LmxrayError(f"{self.folder} is not empty and is not an lmxray run folder",
                                  "choose an empty or new folder for --out")
            return
        owner = (manifest.get("command"), manifest.get("model"))
        if owner != (self.command, self.model):
            raise LmxrayError(
                f"{self.folder} belongs to `lmxray {owner[0]}` with model '{owner[1]}', "
                f"not `lmxray {self.command}` with model '{self.model}'", "choose another folder for --out")
        stored_schema = manifest.get("schema", 1)  # folders from before the field hold layout 1
        if not fresh and stored_schema != self.schema:
            raise LmxrayError(f"{self.folder} holds {self.command} rows of layout {stored_schema} from another "
                              f"lmxray version; this one writes layout {self.schema}",
                              "add --fresh to recompute them, or choose another folder for --out")
        if not fresh and manifest.get("settings") != self.settings:
            raise LmxrayError(f"{self.folder} was made with other settings ({manifest.get('settings')})",
                              "rerun with the same options, or add --fresh to start over")

    def begin(self, identity: dict, fresh: bool = False) -> None:
        """Claim the folder for a loaded model (``identity``: its name and sha256); ``fresh`` drops earlier results."""
        self.check(fresh)
        manifest = self._manifest()
        if manifest is not None and not fresh and manifest.get("identity") != identity:
            raise LmxrayError(f"{self.folder} holds results of different weights ({manifest.get('identity')})",
                              "choose another folder for --out, or add --fresh to start over")
        self.lock()  # a no-op when already held
        if fresh:
            for child in self.folder.iterdir():
                if child.name != LOCK_NAME:
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        if self.parts.exists() and not self.parts.is_dir():
            raise LmxrayError(f"{self.parts} is {special_kind(self.parts)}, not the folder of run parts",
                              f"remove {self.parts}, or add --fresh to start over")
        self.parts.mkdir(exist_ok=True)
        for tmp in list(self.parts.glob(_TMP_PREFIX + "*")) + list(self.folder.glob(_TMP_PREFIX + "*")):
            tmp.unlink()  # the remains of a write that was killed
        data = {"format": FORMAT, "command": self.command, "model": self.model, "schema": self.schema,
                "identity": identity, "settings": self.settings}
        atomic_write(self.folder / MANIFEST, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2) + "\n"))

    def append(self, table: pa.Table) -> None:
        """Store one finished batch as the next part file (needs an ``id`` column)."""
        files = self._part_files()  # numbered after the last one, so a deleted part never gets overwritten
        index = max((int(f.stem[5:]) for f in files if f.stem[5:].isdigit()), default=-1) + 1
        atomic_write(self.parts / f"part-{index:06d}.parquet", lambda tmp: pq.write_table(table, tmp))

    def done_ids(self) -> set[str]:
        """Ids of every row stored so far (an id stored by two parts is an error naming them)."""
        return read_ids(self._part_files())

    def read(self) -> pa.Table | None:
        """All stored rows, parts in the order they were written; None when nothing is stored."""
        return read_parts(self._part_files())

    def _part_files(self) -> list[Path]:
        return sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []

    def _manifest(self) -> dict | None:
        path = self.folder / MANIFEST
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise LmxrayError(f"cannot read the run manifest {path} ({e})", "choose another folder for --out") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise LmxrayError(f"{path} is not an lmxray run manifest", "choose another folder for --out")
        return data


SUMMARY_JSON = "summary.json"


def read_summary(folder: str | Path, command: str) -> dict:
    """The summary a finished ``lmxray COMMAND`` run wrote (for ``--summary RUN``)."""
    path = Path(folder) / SUMMARY_JSON
    if not Path(folder).is_dir():
        kind = special_kind(os.path.realpath(folder)) or "a file"
        what = f"is {kind}, not a run folder" if Path(folder).exists() else "does not exist"
        raise LmxrayError(f"--summary {folder} {what}", f"pass the --out folder of an `lmxray {command}` run")
    if path.exists() and not path.is_file():  # a FIFO would block the read forever
        raise LmxrayError(f"{path} is {special_kind(path) or 'not a regular file'}",
                          f"rerun the {command} to rewrite it")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LmxrayError(f"{folder} has no {command} summary ({SUMMARY_JSON})",
                          f"run `lmxray {command} --out RUN` first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LmxrayError(f"cannot read {path} ({e})", f"rerun the {command} to rewrite it") from None
    if not isinstance(summary, dict) or summary.get("command") != command:
        raise LmxrayError(f"{folder} is not a {command} run", f"pass the --out folder of an `lmxray {command}` run")
    return summary
