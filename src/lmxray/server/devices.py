"""One worker thread per device: it owns the device and runs model work from a queue, one call at a time.

Request threads and jobs never touch a model themselves; they ``submit`` a callable and wait on its future,
so two forward passes (or a load and a forward pass) never run at once on one device, whatever the number
of concurrent requests.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Callable, TypeVar

T = TypeVar("T")
_STOP = object()


class DeviceWorker:
    """A thread consuming ``(callable, future)`` pairs for one device, in the order they were submitted."""

    def __init__(self, device: str):
        self.device = device
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=f"lmxray-device-{device}", daemon=True)
        self._thread.start()
        self.calls = 0  # callables run so far

    def submit(self, fn: Callable[[], T]) -> Future:
        """Queue ``fn`` to run on this device's thread; its result or exception lands in the returned future."""
        future: Future = Future()
        self._queue.put((fn, future))
        return future

    def run(self, fn: Callable[[], T]) -> T:
        """``submit(fn)`` and wait for its result (re-raising its exception in the caller)."""
        return self.submit(fn).result()

    @property
    def pending(self) -> int:
        """Calls queued and not yet started."""
        return self._queue.qsize()

    def close(self, timeout: float | None = 5.0) -> None:
        """Finish the calls already queued, then stop the thread."""
        self._queue.put((_STOP, None))
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            fn, future = self._queue.get()
            if fn is _STOP:
                return
            if not future.set_running_or_notify_cancel():
                continue
            self.calls += 1
            try:
                result = fn()
            except BaseException as e:  # noqa: BLE001 (handed to the waiting caller, which re-raises it)
                future.set_exception(e)
            else:
                future.set_result(result)


class Workers:
    """The device workers of one server, made on first use and keyed by device name (``cpu``, ``cuda:0``...)."""

    def __init__(self):
        self._workers: dict[str, DeviceWorker] = {}
        self._lock = threading.Lock()

    def get(self, device: str) -> DeviceWorker:
        with self._lock:
            if device not in self._workers:
                self._workers[device] = DeviceWorker(device)
            return self._workers[device]

    def all(self) -> list[DeviceWorker]:
        with self._lock:
            return list(self._workers.values())

    def close(self) -> None:
        for worker in self.all():
            worker.close()
