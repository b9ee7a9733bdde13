"""Helpers for the server tests: an in-process client on tiny models, job waiting, forward-pass counting."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from lmxray.server import ServeConfig, create_app

LOOPBACK = "http://127.0.0.1"  # TestClient's default Host (testserver) is refused by the guard, as a foreign host
JOB_TIMEOUT_S = 120


@contextmanager
def serving(runs, models, **settings):
    """A TestClient on a fresh app serving ``models`` with runs in ``runs``; the app is shut down afterwards."""
    app = create_app(ServeConfig(runs=runs, models=tuple(map(str, models)), **settings))
    with TestClient(app, base_url=LOOPBACK) as client:
        yield client


def state(client):
    return client.app.state.lmxray


def wait_job(client, job_id: str, timeout: float = JOB_TIMEOUT_S) -> dict:
    """Poll a job until it finishes; its final JSON."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def assert_user_error(response, status: int, *words):
    """A 4xx answer in the {error, fix} shape naming ``words``."""
    assert response.status_code == status, f"{response.status_code} != {status}: {response.text[:300]}"
    body = response.json()
    assert set(body) == {"error", "fix"} and isinstance(body["error"], str) and body["error"], body
    assert "\n" not in body["error"], body
    for word in words:
        assert word.lower() in body["error"].lower(), f"{word!r} not in {body['error']!r}"


def assert_matches(model, data) -> None:
    """``data`` is exactly what ``model`` (a pydantic model or dataclass) describes: nothing missing, nothing extra."""
    adapter = TypeAdapter(model)
    again = adapter.dump_python(adapter.validate_python(data), mode="json", by_alias=True, exclude_unset=True)
    assert again == data, f"the response drifted from {getattr(model, '__name__', model)}"


class ForwardCounter:
    """Counts forward passes of a model's HF module, and the most that ever ran at once (with their threads)."""

    def __init__(self, hf_module):
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()
        self._handles = [hf_module.register_forward_pre_hook(self._enter),
                         hf_module.register_forward_hook(self._exit)]

    def _enter(self, *_):
        with self._lock:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.threads.add(threading.current_thread().name)
        time.sleep(0.002)  # widen the window in which an overlapping pass would be seen

    def _exit(self, *_):
        with self._lock:
            self.active -= 1

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def assert_close(got, expected, tol: float, where: str = "") -> None:
    """Equal JSON trees, floats within ``tol`` (absolute); a failure names the first drifting field and the drift."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), f"{where}: keys {sorted(got)} != {sorted(expected)}"
        for k in expected:
            assert_close(got[k], expected[k], tol, f"{where}.{k}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), f"{where}: lengths differ"
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_close(g, e, tol, f"{where}[{i}]")
    elif isinstance(expected, float) and not isinstance(got, bool) and isinstance(got, (int, float)):
        assert abs(got - expected) <= tol, f"{where}: {got!r} drifts from {expected!r} by {abs(got - expected):.3g} " \
                                           f"(> {tol})"
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"


def sse_events(lines):
    """Yield the events of a text/event-stream (an iterable of lines) as they complete: dicts of their fields,
    ``data`` parsed as JSON."""
    import json

    current = {}
    for line in lines:
        if not line:
            if current:
                yield current
            current = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        current[field] = json.loads(value.strip()) if field == "data" else value.strip()
    if current:
        yield current
