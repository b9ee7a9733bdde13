"""The run store's SQLite index: one row per stored run, in WAL mode, shared by threads and processes."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from lmxray.errors import LmxrayError

FORMAT = 1  # PRAGMA user_version of the index layout this lmxray reads and writes
BUSY_S = 30.0  # how long a write waits for another process's transaction before giving up
COLUMNS = ("run_id", "key", "model_id", "model_name", "prompt", "n_tokens", "plan", "version", "created",
           "last_used", "bytes")
SELECT = f"SELECT {', '.join(COLUMNS)} FROM runs"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, model_id TEXT NOT NULL, model_name TEXT NOT NULL,
    prompt TEXT NOT NULL, n_tokens INTEGER NOT NULL, plan TEXT NOT NULL, version TEXT NOT NULL,
    created REAL NOT NULL, last_used REAL NOT NULL, bytes INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created);
CREATE INDEX IF NOT EXISTS runs_last_used ON runs (last_used);
CREATE INDEX IF NOT EXISTS runs_model ON runs (model_id, created);
"""


@dataclass(frozen=True)
class RunRecord:
    """One stored run: what it was keyed on, when it was made and last used, and its trace file's size."""

    run_id: str  # 32 hex digits; the trace is .lmxray-store/traces/<run_id>.safetensors
    key: str  # sha256 hex of model id, prompt, plan, position and lmxray version (TraceStore.key)
    model_id: str  # model_identity(model)
    model_name: str
    prompt: str  # the prompt text (the trace's decoded text when the prompt was token ids)
    n_tokens: int
    plan: dict  # plan_key(plan)
    version: str  # the lmxray version that made the trace
    created: float  # epoch seconds
    last_used: float  # epoch seconds of the latest get/open/put of this run (eviction drops the oldest)
    bytes: int  # size of the trace file

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def row(self) -> tuple:
        return tuple(json.dumps(self.plan, sort_keys=True) if c == "plan" else getattr(self, c) for c in COLUMNS)

    @classmethod
    def from_row(cls, row) -> "RunRecord":
        values = dict(zip(COLUMNS, row))
        values["plan"] = json.loads(values["plan"])
        return cls(**values)


class Index:
    """One SQLite connection guarded by a lock (callers come from several threads); writes are BEGIN IMMEDIATE."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, timeout=BUSY_S, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # with WAL: a kill loses nothing committed
        except sqlite3.Error as e:
            raise LmxrayError(f"cannot open the run store index {path}: {e}",
                              "check that the runs folder is writable and on a local disk") from None
        with self.write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, FORMAT):
                raise LmxrayError(f"the run store index {path} has layout {version}; this lmxray reads {FORMAT}",
                                  "use the lmxray that made it, or choose another runs folder")
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {FORMAT}")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors():
            yield self._db

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction holding SQLite's write lock from its start: committed whole or rolled back."""
        with self._lock, self._errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back already (a full disk)
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _errors(self):
        try:
            yield
        except sqlite3.Error as e:
            raise LmxrayError(f"the run store index {self.path} failed: {e}",
                              "check the disk (space, permissions), or move the runs folder's .lmxray-store "
                              "away to start an empty store") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()
