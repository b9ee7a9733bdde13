"""trace_cached: a model's trace of a prompt from the run store when it is there, else traced once and stored."""

from __future__ import annotations

from lmxray.capture.plan import CapturePlan
from lmxray.models.model import Model
from lmxray.store.identity import model_identity
from lmxray.store.index import RunRecord
from lmxray.store.trace_store import TraceStore
from lmxray.trace.types import Trace


def trace_cached(store: TraceStore, model: Model, prompt: str | list[int], plan: CapturePlan | dict | None = None,
                 *, position: int = -1, model_id: str | None = None) -> tuple[RunRecord, Trace, bool]:
    """(record, trace, hit): a hit reads the stored trace and runs no forward pass; a miss traces and stores.

    ``model_id``: ``model_identity(model)`` taken when the model was loaded (files rewritten since then do not
    change what the loaded weights are); by default it is computed now.
    """
    plan = CapturePlan.from_dict(plan) if isinstance(plan, dict) else plan or CapturePlan()
    model_id = model_identity(model) if model_id is None else model_id
    key = store.key(model_id, prompt, plan, position)
    record = store.get(key)
    if record is not None:
        trace = store.try_open(record.run_id)
        if trace is not None:
            return record, trace, True
    trace = model.trace(prompt, plan=plan, position=position)
    record = store.put(key, trace, model_id=model_id, model_name=model.info.name, prompt=prompt, plan=plan)
    return record, trace, False
