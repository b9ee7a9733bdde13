"""Long work as jobs: each runs on a job thread, reports progress as events, and can be cancelled between steps.

A job's function does its model work through the device worker, so jobs queue behind (and between) other
model calls. Cancellation is cooperative: ``job.check()`` raises ``Cancelled`` at the job's step boundaries
(between twins, batches, stages), never in the middle of a forward pass.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from lmxray.errors import LmxrayError
from lmxray.server.errors import Conflict, NotFound, log

TERMINAL = ("done", "failed", "cancelled")
JOB_THREADS = 4  # jobs running at once (their model calls still queue on the device worker)
MAX_ACTIVE = 64  # queued + running jobs; more is refused with 409
KEEP_FINISHED = 100  # finished jobs kept for GET /api/jobs/{id}; older ones are dropped
MAX_EVENTS = 1000  # progress events kept per job; past it only the latest progress is kept


class Cancelled(Exception):
    """Raised by ``Job.check`` in a job whose cancellation was asked for."""


class Job:
    """One job: its kind and parameters, state, progress, events, and its result or error when finished."""

    def __init__(self, kind: str, params: dict):
        self.id = secrets.token_hex(8)
        self.kind, self.params = kind, params
        self.state, self.progress, self.message = "queued", 0.0, "queued"
        self.result: dict | None = None
        self.error: dict | None = None
        self.created, self.started, self.finished = time.time(), None, None
        self.events: list[dict] = []
        self._seq = itertools.count()
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._emit()

    # -- called by the job's function ---------------------------------------------------------
    def check(self) -> None:
        """Raise ``Cancelled`` if cancellation was asked for; call it between steps."""
        if self._cancel.is_set():
            raise Cancelled()

    def step(self, done: float, total: float, message: str) -> None:
        """Report progress (``done`` of ``total`` steps), then honour a pending cancel."""
        with self._lock:
            self.progress = min(1.0, max(0.0, done / total)) if total else 0.0
            self.message = message
            self._emit()
        self.check()

    # -- called by the registry and the API --------------------------------------------------
    def cancel(self) -> bool:
        """Ask the job to stop at its next step; False when it has already finished."""
        with self._lock:
            if self.state in TERMINAL:
                return False
            self._cancel.set()
            if self.state == "queued":  # never started: it ends now
                self._finish("cancelled", "cancelled before it started")
            return True

    def events_from(self, seq: int) -> list[dict]:
        with self._lock:
            return [e for e in self.events if e["seq"] >= seq]

    @property
    def is_finished(self) -> bool:
        return self.state in TERMINAL

    def to_dict(self, with_result: bool = True) -> dict:
        with self._lock:
            data = {"id": self.id, "kind": self.kind, "params": self.params, "state": self.state,
                    "progress": self.progress, "message": self.message, "error": self.error,
                    "created": self.created, "started": self.started, "finished": self.finished}
            data["result"] = self.result if with_result else None
            return data

    def _run(self, fn: Callable[["Job"], dict]) -> None:
        with self._lock:
            if self.state != "queued":
                return  # cancelled while queued
            self.state, self.started, self.message = "running", time.time(), "running"
            self._emit()
        try:
            result = fn(self)
        except Cancelled:
            with self._lock:
                self._finish("cancelled", "cancelled")
        except LmxrayError as e:
            with self._lock:
                self.error = {"error": e.problem, "fix": e.fix}
                self._finish("failed", e.problem)
        except Exception as e:  # noqa: BLE001 (a bug: reported on the job, logged with its traceback)
            log.exception("job %s (%s) failed", self.id, self.kind)
            with self._lock:
                self.error = {"error": f"internal error: {type(e).__name__}",
                              "fix": "this is a bug in lmxray; please report it with the job's parameters"}
                self._finish("failed", self.error["error"])
        else:
            with self._lock:
                self.result, self.progress = result, 1.0
                self._finish("done", "done")

    def _finish(self, state: str, message: str) -> None:
        self.state, self.message, self.finished = state, message, time.time()
        self._emit()

    def _emit(self) -> None:
        event = {"seq": next(self._seq), "state": self.state, "progress": self.progress, "message": self.message}
        if len(self.events) >= MAX_EVENTS and self.state not in TERMINAL:
            self.events[-1] = event  # a very long job keeps its first events and its latest progress
        else:
            self.events.append(event)


class Jobs:
    """The server's jobs: started on a small thread pool, finished ones kept (the newest KEEP_FINISHED)."""

    def __init__(self, threads: int = JOB_THREADS):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lmxray-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, kind: str, params: dict, fn: Callable[[Job], dict]) -> Job:
        """Queue ``fn(job)`` as a new job of ``kind``; refused (409) when too many jobs are waiting already."""
        with self._lock:
            active = sum(1 for j in self._jobs.values() if not j.is_finished)
            if active >= MAX_ACTIVE:
                raise Conflict(f"{active} jobs are queued or running already",
                               "wait for some to finish, or cancel them (DELETE /api/jobs/{id})")
            job = Job(kind, params)
            self._jobs[job.id] = job
            self._prune()
        self._pool.submit(job._run, fn)
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}",
                           "list the jobs with GET /api/jobs (finished jobs are kept for a while)")
        return job

    def list(self) -> list[Job]:
        with self._lock:
            return list(reversed(self._jobs.values()))

    def close(self) -> None:
        for job in self.list():
            job.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _prune(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.is_finished]
        for key in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[key]
