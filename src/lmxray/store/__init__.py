"""The run store: traces kept as .safetensors under a runs folder, indexed in SQLite, looked up by what made them.

    store = TraceStore("runs")
    record, trace, hit = trace_cached(store, model, "The capital of France is", CapturePlan())
"""

from lmxray.store.cached import trace_cached
from lmxray.store.identity import model_identity, plan_key
from lmxray.store.index import RunRecord
from lmxray.store.trace_store import TraceStore

__all__ = ["RunRecord", "TraceStore", "model_identity", "plan_key", "trace_cached"]
