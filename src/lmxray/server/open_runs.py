"""Recently read runs kept open in memory (a small LRU bounded in bytes), so a page stepping through one run's views
does not re-read and re-validate its trace file on every request.

Each use still asks the store (``store.get(key)``: the run must still be listed and its file present, and the run
is marked as used for the store's own eviction), so a deleted or evicted run is never answered from memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from lmxray.errors import LmxrayError
from lmxray.store import RunRecord, TraceStore
from lmxray.trace.types import Trace

MAX_RUNS = 64
MAX_BYTES = 256 * 2**20  # by the runs' file sizes: a dense trace in memory is about its file's size


class OpenRuns:
    """run id -> (record, trace) of the runs read most recently, within MAX_RUNS and MAX_BYTES."""

    def __init__(self, store: TraceStore, max_runs: int = MAX_RUNS, max_bytes: int = MAX_BYTES):
        self.store, self.max_runs, self.max_bytes = store, max_runs, max_bytes
        self._open: OrderedDict[str, tuple[RunRecord, Trace]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str) -> Trace | None:
        """The run's trace, from memory when it is open and still stored, else read from the store; None when the
        store has no such run."""
        with self._lock:
            held = self._open.get(run_id)
            if held is not None:
                self._open.move_to_end(run_id)
        if held is not None:
            if self.store.get(held[0].key) is not None:
                return held[1]
            self.forget(run_id)
            return None
        trace = self.store.try_open(run_id)
        if trace is not None:
            try:
                record = self.store.record(run_id)
            except LmxrayError:  # deleted between the read and this lookup: answer it, do not hold it
                return trace
            self.keep(record, trace)
        return trace

    def keep(self, record: RunRecord, trace: Trace) -> None:
        """Hold a run just made or read (the least recently used ones leave when the bounds are passed)."""
        if record.bytes > self.max_bytes:
            return
        with self._lock:
            self._open[record.run_id] = (record, trace)
            self._open.move_to_end(record.run_id)
            while len(self._open) > self.max_runs or sum(r.bytes for r, _ in self._open.values()) > self.max_bytes:
                self._open.popitem(last=False)

    def forget(self, run_id: str) -> None:
        with self._lock:
            self._open.pop(run_id, None)
