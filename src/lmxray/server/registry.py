"""The models a server may use: the SPECs it was started with, each loaded lazily on its device's worker."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass

from lmxray.errors import LmxrayError
from lmxray.models.loader import load, pick_device
from lmxray.models.model import Model
from lmxray.server.devices import DeviceWorker, Workers
from lmxray.server.errors import NotFound
from lmxray.store import model_identity


@dataclass
class Loaded:
    """A loaded model with what the run store keys it on, and the worker that owns its device."""

    spec: str
    model: Model
    model_id: str
    worker: DeviceWorker


class Entry:
    """One served SPEC: not loaded yet, loaded, or failed at its last try (the error says why)."""

    def __init__(self, spec: str, worker: DeviceWorker):
        self.spec, self.worker = spec, worker
        self.loaded: Loaded | None = None
        self.error: dict | None = None
        self.load_seconds: float | None = None
        self.loading = False

    @property
    def state(self) -> str:
        if self.loaded is not None:
            return "loaded"
        if self.loading:
            return "loading"
        return "failed" if self.error is not None else "available"

    def to_dict(self) -> dict:
        model = self.loaded.model if self.loaded else None
        return {"spec": self.spec, "state": self.state, "device": self.worker.device,
                "info": asdict(model.info) if model else None, "model_id": self.loaded.model_id if model else None,
                "max_positions": model.max_positions if model else None, "load_seconds": self.load_seconds,
                "error": self.error}


class Registry:
    """The served models by SPEC; ``get(spec)`` loads one on first use (on its device's worker) and keeps it."""

    def __init__(self, specs: tuple[str, ...], device: str, dtype: str, workers: Workers):
        self.device = str(pick_device(device))
        self.dtype = dtype
        self._requested_device = device
        worker = workers.get(self.device)
        self._entries = {spec: Entry(spec, worker) for spec in specs}
        self._lock = threading.Lock()

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def entry(self, spec: str) -> Entry:
        if spec not in self._entries:
            served = ", ".join(self._entries)
            raise NotFound(f"model {spec!r} is not served here", f"use one of: {served} (see GET /api/models)")
        return self._entries[spec]

    def decoder(self, model_id: str):
        """``token_text`` of a loaded model whose weights have this identity (to name tokens a stored run only
        knows by id), or None when no such model is loaded. Decoding only reads the tokenizer."""
        for entry in self.entries():
            if entry.loaded is not None and entry.loaded.model_id == model_id:
                return entry.loaded.model.token_text
        return None

    def get(self, spec: str) -> Loaded:
        """The loaded model of ``spec``, loading it on its worker first if needed (a failed load raises its error)."""
        entry = self.entry(spec)
        if entry.loaded is not None:
            return entry.loaded
        return entry.worker.run(lambda: self._load(entry))

    def _load(self, entry: Entry) -> Loaded:
        """Runs on the worker: a second request queued behind the first load finds the model loaded."""
        if entry.loaded is not None:
            return entry.loaded
        with self._lock:
            entry.loading = True
        start = time.perf_counter()
        try:
            model = load(entry.spec, device=self._requested_device, dtype=self.dtype)
            loaded = Loaded(entry.spec, model, model_identity(model), entry.worker)
        except LmxrayError as e:
            with self._lock:
                entry.error, entry.loading = {"error": e.problem, "fix": e.fix}, False
            raise
        except BaseException:
            with self._lock:
                entry.loading = False
            raise
        with self._lock:
            entry.loaded, entry.error, entry.loading = loaded, None, False
            entry.load_seconds = time.perf_counter() - start
        return loaded
