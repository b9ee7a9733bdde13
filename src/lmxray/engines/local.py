"""The local engine: the batches run one after another in this process, on the model it loaded."""

from __future__ import annotations

from typing import Callable

from lmxray.engines.job import Item, Job, Output
from lmxray.engines.model_ref import ModelRef


class LocalEngine:
    """One process, one model. Batch i+1 is launched before batch i is collected, so on a GPU the host work of
    one batch hides under the next forward pass; each batch is still stored whole."""

    name = "local"

    def __init__(self, model: ModelRef | None = None):
        self.model = model  # how driver_model loads; None when the caller brings a loaded model

    def driver_model(self, progress: Callable[[str], None] | None = None):
        """The model this process computes with, loaded (and spread by its device map) once."""
        return self.model.load(progress)

    def run(self, job: Job, model, items: list[Item], batch_size: int, keep: Callable[[Output], None]) -> None:
        in_flight = None
        for i in range(0, len(items) + batch_size, batch_size):
            chunk = items[i:i + batch_size]
            launched = job.launch(model, chunk) if chunk else None
            if in_flight is not None:
                keep(job.collect(model, in_flight))
            in_flight = launched
