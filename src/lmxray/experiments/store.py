"""A resumable run folder: a manifest naming its owner, and one atomically written part file per finished batch.

A part appears whole or not at all (temporary file, fsync, rename, fsync of the
folder), so a run killed at any moment — SIGKILL included — loses only the batch
in flight, and the ids found in the parts say exactly what is done: rerunning
never repeats or drops a row.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from lmxray.errors import LmxrayError

MANIFEST = "run.json"
PARTS = "parts"
FORMAT = "lmxray.run/1"
_TMP_PREFIX = ".tmp-"


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(temp_path)`` on a temporary file beside ``path``, fsync it, then rename it into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX + path.name + ".")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; run folders are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_tables(table: pa.Table, folder: Path, stem: str) -> None:
    """Write ``stem.parquet`` and ``stem.csv`` atomically."""
    import pyarrow.csv as pacsv

    atomic_write(folder / f"{stem}.parquet", lambda tmp: pq.write_table(table, tmp))
    atomic_write(folder / f"{stem}.csv", lambda tmp: pacsv.write_csv(table, tmp))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RunStore:
    """One run folder, owned by one command and one model; ``settings`` are those that shape stored rows."""

    def __init__(self, folder: str | Path, command: str, model: str, settings: dict):
        self.folder = Path(folder)
        self.command, self.model, self.settings = command, model, settings
        self.parts = self.folder / PARTS

    def check(self, fresh: bool = False) -> None:
        """Refuse a folder owned by another command or model, or (unless fresh) made with other settings.

        Writes nothing, so it can run before the model loads.
        """
        if self.folder.exists() and not self.folder.is_dir():
            raise LmxrayError(f"{self.folder} is a file, not a run folder", "pass a folder to --out")
        manifest = self._manifest()
        if manifest is None:
            if self.folder.exists() and any(self.folder.iterdir()):
                raise LmxrayError(f"{self.folder} is not empty and is not an lmxray run folder",
                                  "choose an empty or new folder for --out")
            return
        owner = (manifest.get("command"), manifest.get("model"))
        if owner != (self.command, self.model):
            raise LmxrayError(
                f"{self.folder} belongs to `lmxray {owner[0]}` with model '{owner[1]}', "
                f"not `lmxray {self.command}` with model '{self.model}'", "choose another folder for --out")
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
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LmxrayError(f"cannot create the run folder {self.folder}: {e.strerror or e}",
                              "choose a writable folder for --out") from None
        if fresh:
            for child in self.folder.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        self.parts.mkdir(exist_ok=True)
        for tmp in list(self.parts.glob(_TMP_PREFIX + "*")) + list(self.folder.glob(_TMP_PREFIX + "*")):
            tmp.unlink()  # the remains of a write that was killed
        data = {"format": FORMAT, "command": self.command, "model": self.model, "identity": identity,
                "settings": self.settings}
        atomic_write(self.folder / MANIFEST, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2) + "\n"))

    def append(self, table: pa.Table) -> None:
        """Store one finished batch as the next part file (needs an ``id`` column)."""
        index = len(self._part_files())
        atomic_write(self.parts / f"part-{index:06d}.parquet", lambda tmp: pq.write_table(table, tmp))

    def done_ids(self) -> set[str]:
        """Ids of every row stored so far."""
        done: set[str] = set()
        for f in self._part_files():
            done.update(pq.read_table(f, columns=["id"]).column("id").to_pylist())
        return done

    def read(self) -> pa.Table | None:
        """All stored rows, parts in the order they were written; None when nothing is stored."""
        files = self._part_files()
        return pa.concat_tables([pq.read_table(f) for f in files]) if files else None

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
        what = "is a file, not a run folder" if Path(folder).exists() else "does not exist"
        raise LmxrayError(f"--summary {folder} {what}", f"pass the --out folder of an `lmxray {command}` run")
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
