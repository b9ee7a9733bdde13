"""TraceStore: every run's trace as a .safetensors file, indexed in SQLite, with a size limit (LRU eviction).

A trace file is written whole (temporary file, fsync, rename) before its row is committed, and a row is
deleted before its file, so a listed run always opens. Files without a row (a kill between the rename and
the commit) and temporary files are removed when a store is opened. See docs/store.md.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from lmxray.atomic import atomic_write
from lmxray.capture.plan import CapturePlan
from lmxray.errors import LmxrayError
from lmxray.store.identity import plan_key
from lmxray.store.index import SELECT, Index, RunRecord
from lmxray.trace.dense import read_dense, write_dense
from lmxray.trace.types import Trace
from lmxray.version import __version__

STORE_DIR = ".lmxray-store"
INDEX_NAME = "index.sqlite"
TRACES_DIR = "traces"
LOCK_NAME = "files.lock"  # flock: shared while a put writes a file, exclusive while an open sweeps orphans
SUFFIX = ".safetensors"
DEFAULT_MAX_BYTES = 2 * 2**30
RUN_ID_DIGITS, KEY_DIGITS = 32, 64


class TraceStore:
    """Runs under ``root/.lmxray-store/``: ``index.sqlite`` and ``traces/<run_id>.safetensors``.

    Safe to share between threads, and between processes opening the same root. A put of a key already
    stored keeps the stored run and returns its record (the traces of one key are the same computation).
    """

    def __init__(self, root: Path | str, max_bytes: int | None = DEFAULT_MAX_BYTES):
        if max_bytes is not None and (not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0):
            raise LmxrayError(f"max_bytes must be a whole number of bytes >= 0 or None, got {max_bytes!r}",
                              "pass e.g. max_bytes=2 * 2**30, or None for no limit", params=("max_bytes",))
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.folder = self.root / STORE_DIR
        self.traces = self.folder / TRACES_DIR
        if self.root.exists() and not self.root.is_dir():
            raise LmxrayError(f"the runs folder {self.root} is not a folder", "choose a folder for the runs")
        try:
            self.traces.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LmxrayError(f"cannot create the run store in {self.root}: {e.strerror or e}",
                              "choose a writable runs folder") from None
        self._index = Index(self.folder / INDEX_NAME)
        self._recover()

    # -- keys and records ----------------------------------------------------------------------------

    def key(self, model_id: str, prompt: str | list[int], plan: CapturePlan | dict, position: int = -1) -> str:
        """sha256 hex over the canonical JSON of model id, prompt, plan, position and the lmxray version."""
        if not isinstance(model_id, str) or not model_id:
            raise LmxrayError(f"model_id must be a non-empty string, got {model_id!r}",
                              "pass model_identity(model)", params=("model_id",))
        if not isinstance(position, int) or isinstance(position, bool):
            raise LmxrayError(f"position must be an integer, got {position!r}", "pass e.g. position=-1",
                              params=("position",))
        body = {"model": model_id, "prompt": _prompt_key(prompt), "plan": plan_key(plan), "position": position,
                "version": __version__}
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")).hexdigest()

    def get(self, key: str) -> RunRecord | None:
        """The run stored under ``key`` (marked as just used), or None; a row whose file vanished is dropped."""
        _check(key, KEY_DIGITS, "key", "pass the result of store.key(...)")
        with self._index.write() as db:
            row = db.execute(f"{SELECT} WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            record = RunRecord.from_row(row)
            if not self.trace_path(record.run_id).is_file():
                db.execute("DELETE FROM runs WHERE run_id = ?", (record.run_id,))
                return None
            return self._touch(db, record)

    def put(self, key: str, trace: Trace, *, model_id: str, model_name: str, prompt: str | list[int],
            plan: CapturePlan | dict) -> RunRecord:
        """Store ``trace`` under ``key``, then evict the least recently used runs while over ``max_bytes``.

        The file is complete on disk before the row is committed. When ``key`` is already stored (another
        thread or process got there first), that run is kept and its record returned.
        """
        _check(key, KEY_DIGITS, "key", "pass the result of store.key(...)")
        if not isinstance(trace, Trace):
            raise LmxrayError(f"trace must be an lmxray Trace, got {type(trace).__name__}",
                              "pass the result of model.trace(...)", params=("trace",))
        for name, value in (("model_id", model_id), ("model_name", model_name)):
            if not isinstance(value, str) or not value:
                raise LmxrayError(f"{name} must be a non-empty string, got {value!r}", f"pass {name}=...",
                                  params=(name,))
        _prompt_key(prompt)  # checks it
        text = prompt if isinstance(prompt, str) else trace.prompt
        plan_dict = plan_key(plan)
        stored = self.get(key)
        if stored is not None:
            return stored
        run_id = uuid.uuid4().hex
        path = self.trace_path(run_id)
        with self._files_lock(fcntl.LOCK_SH):
            atomic_write(path, lambda tmp: write_dense(trace, tmp))
            now = time.time()
            record = RunRecord(run_id, key, model_id, model_name, text, trace.n_tokens, plan_dict, __version__,
                               now, now, path.stat().st_size)
            try:
                stored, victims = self._insert(record)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        if stored is not None:
            path.unlink(missing_ok=True)
            return stored
        self._unlink(victims)
        return record

    def record(self, run_id: str) -> RunRecord:
        """The record of one run; LmxrayError when the store has no such run."""
        _check(run_id, RUN_ID_DIGITS, "run_id", "pass a run_id from store.list()")
        with self._index.read() as db:
            row = db.execute(f"{SELECT} WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise _no_run(run_id)
        return RunRecord.from_row(row)

    def list(self, limit: int = 50, offset: int = 0, model_id: str | None = None) -> list[RunRecord]:
        """Stored runs, newest first; ``model_id`` keeps one model's runs."""
        for name, value in (("limit", limit), ("offset", offset)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise LmxrayError(f"{name} must be an integer >= 0, got {value!r}", f"pass e.g. {name}=0",
                                  params=(name,))
        if model_id is not None and not isinstance(model_id, str):
            raise LmxrayError(f"model_id must be a string or None, got {model_id!r}", "pass model_identity(model)",
                              params=("model_id",))
        where, args = ("WHERE model_id = ? ", (model_id,)) if model_id is not None else ("", ())
        with self._index.read() as db:
            rows = db.execute(f"{SELECT} {where}ORDER BY created DESC, rowid DESC LIMIT ? OFFSET ?",
                              (*args, limit, offset)).fetchall()
        return [RunRecord.from_row(r) for r in rows]

    def total_bytes(self) -> int:
        with self._index.read() as db:
            return db.execute("SELECT COALESCE(SUM(bytes), 0) FROM runs").fetchone()[0]

    # -- trace files ---------------------------------------------------------------------------------

    def trace_path(self, run_id: str) -> Path:
        """Where a run's trace lives; only 32-hex run ids are accepted, so the path is always inside the store."""
        _check(run_id, RUN_ID_DIGITS, "run_id", "pass a run_id from store.list()")
        return self.traces / f"{run_id}{SUFFIX}"

    def open(self, run_id: str) -> Trace:
        """Read a run's trace (and mark the run as just used); LmxrayError when the store has no such run."""
        trace = self.try_open(run_id)
        if trace is None:
            raise _no_run(run_id)
        return trace

    def try_open(self, run_id: str) -> Trace | None:
        """A run's trace, or None when the run is not (or, evicted meanwhile, no longer) in the store."""
        _check(run_id, RUN_ID_DIGITS, "run_id", "pass a run_id from store.list()")
        with self._index.write() as db:
            row = db.execute(f"{SELECT} WHERE run_id = ?", (run_id,)).fetchone()
            if row is not None:
                self._touch(db, RunRecord.from_row(row))
        if row is None:
            return None
        path = self.trace_path(run_id)
        try:
            return read_dense(path)
        except LmxrayError:
            if path.exists():
                raise
            return None  # deleted or evicted between the lookup and the read

    def delete(self, run_id: str) -> None:
        """Remove a run: its row first (it is no longer listed), then its file."""
        _check(run_id, RUN_ID_DIGITS, "run_id", "pass a run_id from store.list()")
        with self._index.write() as db:
            gone = db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount
        if not gone:
            raise _no_run(run_id)
        self._unlink([run_id])

    def close(self) -> None:
        """Close the index connection (the store cannot be used afterwards)."""
        self._index.close()

    # -- internals -----------------------------------------------------------------------------------

    def _insert(self, record: RunRecord) -> tuple[RunRecord | None, list[str]]:
        """Commit ``record``'s row and evict: (None, evicted run ids), or (the run already under its key, [])."""
        with self._index.write() as db:
            row = db.execute(f"{SELECT} WHERE key = ?", (record.key,)).fetchone()
            if row is not None:
                other = RunRecord.from_row(row)
                if self.trace_path(other.run_id).is_file():
                    return self._touch(db, other), []
                db.execute("DELETE FROM runs WHERE run_id = ?", (other.run_id,))
            db.execute(f"INSERT INTO runs VALUES ({', '.join('?' * len(record.row()))})", record.row())
            return None, self._evict(db, keep=record.run_id)

    def _touch(self, db, record: RunRecord) -> RunRecord:
        now = max(time.time(), record.last_used)
        db.execute("UPDATE runs SET last_used = ? WHERE run_id = ?", (now, record.run_id))
        return RunRecord(**{**record.to_dict(), "last_used": now})

    def _evict(self, db, keep: str | None) -> list[str]:
        """Delete the rows of the least recently used runs (never ``keep``) until the total fits; their ids."""
        if self.max_bytes is None:
            return []
        total = db.execute("SELECT COALESCE(SUM(bytes), 0) FROM runs").fetchone()[0]
        if total <= self.max_bytes:
            return []
        victims = []
        for run_id, size in db.execute("SELECT run_id, bytes FROM runs WHERE run_id != ? "
                                       "ORDER BY last_used, rowid", (keep or "",)).fetchall():
            if total <= self.max_bytes:
                break
            victims.append(run_id)
            total -= size
        db.executemany("DELETE FROM runs WHERE run_id = ?", [(r,) for r in victims])
        return victims

    def _recover(self) -> None:
        """Remove temporary and row-less trace files, drop rows whose file is missing, evict down to the limit.

        Runs under the exclusive file lock, so no put of another process is between its rename and commit.
        """
        with self._files_lock(fcntl.LOCK_EX):
            with self._index.write() as db:
                ids = {r[0] for r in db.execute("SELECT run_id FROM runs")}
                present = set()
                for entry in os.scandir(self.traces):
                    run_id = entry.name.removesuffix(SUFFIX)
                    if run_id in ids and entry.name.endswith(SUFFIX) and entry.is_file(follow_symlinks=False):
                        present.add(run_id)
                    elif not entry.is_dir(follow_symlinks=False):
                        Path(entry.path).unlink(missing_ok=True)
                db.executemany("DELETE FROM runs WHERE run_id = ?", [(r,) for r in ids - present])
                victims = self._evict(db, keep=None)
            self._unlink(victims)

    def _unlink(self, run_ids) -> None:
        for run_id in run_ids:
            self.trace_path(run_id).unlink(missing_ok=True)

    @contextmanager
    def _files_lock(self, mode: int):
        try:
            fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise LmxrayError(f"cannot open the run store's lock file in {self.folder}: {e.strerror or e}",
                              "choose a writable runs folder") from None
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)


def _check(value, digits: int, name: str, fix: str) -> None:
    """``value`` is exactly ``digits`` lowercase hex digits (so a run id can never name a path outside the store)."""
    if not isinstance(value, str) or not re.fullmatch(f"[0-9a-f]{{{digits}}}", value):
        raise LmxrayError(f"{value!r:.80} is not a valid {name} ({digits} hex digits)", fix, params=(name,))


def _prompt_key(prompt) -> dict:
    """``{"text": ...}`` or ``{"ids": [...]}``: text and token ids never share a key."""
    if isinstance(prompt, str) and prompt:
        return {"text": prompt}
    if isinstance(prompt, (list, tuple)) and prompt and all(type(i) is int for i in prompt):
        return {"ids": list(prompt)}
    raise LmxrayError(f"prompt must be non-empty text or a list of token ids, got {prompt!r:.60}",
                      'pass e.g. "The capital of France is" or [1, 504, 3575]', params=("prompt",))


def _no_run(run_id: str) -> LmxrayError:
    return LmxrayError(f"no run '{run_id}' in the store",
                       "pass a run_id from store.list() (a run may have been evicted or deleted)", params=("run_id",))
