"""``lmxray batch``: trace many prompts and keep one summary row each, resumable, on any engine.

Each prompt's row holds its prediction and confidence, the attention-convergence
metrics of its prediction position (analysis.convergence.summarize) and, per
layer, the share of that position's attention on the first token. With
``traces`` set, each prompt's full trace is written beside the rows too.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from lmxray.analysis.convergence import summarize
from lmxray.analysis.divergence import first_share
from lmxray.atomic import TMP_PREFIX
from lmxray.capture import CapturePlan
from lmxray.engines import Engine, Item, LocalEngine, Output, identity, run_job
from lmxray.errors import LmxrayError
from lmxray.experiments.datasets import Prompt
from lmxray.experiments.store import SUMMARY_JSON, RunStore, atomic_write, write_tables

COMMAND = "batch"
TRACE_FORMATS = ("jsonl", "safetensors")
TRACES = "traces"  # folder of the run holding one trace per prompt
# The prediction position's head-summed attention row: what the summary metrics read, and nothing else.
SUMMARY_PLAN = CapturePlan(positions=(-1,), attention=True, per_head=False, row_stats=False, components=(),
                           n_values=0, lens=False)


@dataclass(frozen=True)
class BatchConfig:
    """Batch options; ``traces`` (None, "jsonl" or "safetensors") shapes the run folder."""

    batch_size: int = 8
    traces: str | None = None
    limit: int | None = None  # only the first N prompts

    def __post_init__(self):
        if self.batch_size < 1:
            raise LmxrayError(f"batch size must be at least 1, got {self.batch_size}", "pass --batch-size 1 or more")
        if self.traces is not None and self.traces not in TRACE_FORMATS:
            raise LmxrayError(f"unknown trace format '{self.traces}'", "pass --traces jsonl or --traces safetensors")
        if self.limit is not None and self.limit < 1:
            raise LmxrayError(f"limit must be at least 1, got {self.limit}", "pass --limit 1 or more")

    def stored_settings(self) -> dict:
        return {"traces": self.traces}


def batch_store(folder, model_spec: str, config: BatchConfig) -> RunStore:
    """The run folder of a batch, tied to its model and to whether it keeps traces."""
    return RunStore(folder, COMMAND, model_spec, config.stored_settings())


def prompt_key(prompt: Prompt) -> str:
    """The stored id: the prompt's id plus a hash of its text, so an edited prompt is computed again."""
    return f"{prompt.id}@{hashlib.sha256(prompt.text.encode()).hexdigest()[:12]}"


def run_batch(model, prompts: list[Prompt], store: RunStore, config: BatchConfig, fresh: bool = False,
              progress: Callable[[int, int], None] | None = None, engine: Engine | None = None) -> dict:
    """Trace every pending prompt on ``engine`` (default: this process), one part per batch; returns counts and
    timing. ``model`` is the engine's ``driver_model()``: the loaded model, or for Ray its weightless card."""
    prompts = prompts[: config.limit] if config.limit else prompts
    items = []
    for p in prompts:  # every prompt checked before the run folder is touched; a bad one is named
        try:
            n_tokens = len(model.encode(p.text))
        except LmxrayError as e:
            raise LmxrayError(f"prompt '{p.id}' ({p.where}): {e.problem}", e.fix) from None
        items.append(Item(prompt_key(p), n_tokens, p))
    store.begin(identity(model), fresh=fresh)
    for tmp in (store.folder / TRACES).glob(TMP_PREFIX + "*"):
        tmp.unlink()  # the remains of a trace write that was killed
    stats = run_job(engine or LocalEngine(), BatchJob(config.traces), model, items, store, config.batch_size,
                    progress)
    return {"prompts": stats.pop("items"), **stats}


@dataclass(frozen=True)
class BatchJob:
    """A batch's per-batch work for any engine: items hold the Prompt."""

    traces: str | None = None

    def launch(self, model, items: list[Item]) -> Output:
        plan = SUMMARY_PLAN if self.traces is None else CapturePlan()
        traces = model.trace([it.data.text for it in items], plan=plan)
        files = {}
        rows = {name: [] for name in ROW_SCHEMA.names}
        for item, trace in zip(items, traces):
            name = None if self.traces is None else trace_file(item.data.id, self.traces)
            if name is not None:
                files[name] = _trace_bytes(trace, self.traces)
            for key, value in summary_row(item, trace, name).items():
                rows[key].append(value)
        return Output(pa.table(rows, schema=ROW_SCHEMA), files)

    def collect(self, model, launched: Output) -> Output:
        return launched


def summary_row(item: Item, trace, trace_name: str | None) -> dict:
    """One prompt's stored row: prediction, confidence, convergence metrics and first-token share per layer."""
    metrics = summarize(trace)
    rows = trace.attention[:, trace.position, :trace.position + 1]  # [layer, k_pos], summed over heads
    return {"id": item.id, "prompt_id": item.data.id, "source": item.data.where, "n_tokens": trace.n_tokens,
            "predicted_id": trace.predicted_token, "prediction": trace.predicted_text,
            "confidence": float(trace.confidence), "sink_share": float(metrics.sink_share),
            "entropy_bits": float(metrics.entropy_bits), "entropy_norm": float(metrics.entropy_norm),
            "active_positions": int(metrics.active_positions), "active_share": float(metrics.active_share),
            "total_mass": float(metrics.total_mass), "first_share": first_share(rows).tolist(),
            "trace_file": trace_name}


def trace_file(prompt_id: str, fmt: str) -> str:
    """Where a prompt's trace goes in the run folder: its id made file-safe, plus a hash that keeps ids apart."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", prompt_id).strip("._")[:64] or "prompt"
    return f"{TRACES}/{slug}-{hashlib.sha256(prompt_id.encode()).hexdigest()[:8]}.{fmt}"


def _trace_bytes(trace, fmt: str) -> bytes:
    """A trace's file content (written by the process that stores the batch, which may be another machine)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"trace.{fmt}"
        trace.save(path)
        return path.read_bytes()


def finish_batch(store: RunStore, prompts: list[Prompt], config: BatchConfig, model_name: str) -> dict:
    """Write prompts.* (one row per prompt, in file order), layers.* (first-token share per layer) and summary.json
    from the stored parts; returns the summary."""
    stored = store.read()
    if stored is None:
        raise LmxrayError(f"{store.folder} holds no results yet", "run the batch first")
    chosen = prompts[: config.limit] if config.limit else prompts
    order = {prompt_key(p): i for i, p in enumerate(chosen)}
    data = stored.to_pydict()
    keep = sorted((i for i, key in enumerate(data["id"]) if key in order), key=lambda i: order[data["id"][i]])
    data = {name: [values[i] for i in keep] for name, values in data.items()}
    shares = np.asarray(data.pop("first_share"), dtype=np.float64)  # [prompt, layer]
    n_layers = shares.shape[1]
    data.pop("id")
    table = pa.table({"id": data.pop("prompt_id"), **data})
    layers = pa.table({"id": np.repeat(np.array(table.column("id").to_pylist(), dtype=object), n_layers),
                       "layer": np.tile(np.arange(n_layers, dtype=np.int32), len(keep)), "first_share": shares.ravel()})
    write_tables(table, store.folder, "prompts")
    write_tables(layers, store.folder, "layers")
    confidence = np.asarray(table.column("confidence").to_pylist())
    summary = {"command": COMMAND, "model": model_name, "prompts": len(keep), "layers": n_layers,
               "traces": config.traces, "mean_confidence": float(confidence.mean()),
               "mean_sink_share": float(np.mean(table.column("sink_share").to_pylist())),
               "mean_entropy_norm": float(np.mean(table.column("entropy_norm").to_pylist())),
               "first_share_by_layer": shares.mean(0).tolist()}
    atomic_write(store.folder / SUMMARY_JSON, lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2) + "\n"))
    return summary


ROW_SCHEMA = pa.schema([
    ("id", pa.string()), ("prompt_id", pa.string()), ("source", pa.string()), ("n_tokens", pa.int32()),
    ("predicted_id", pa.int64()), ("prediction", pa.string()), ("confidence", pa.float64()),
    ("sink_share", pa.float64()), ("entropy_bits", pa.float64()), ("entropy_norm", pa.float64()),
    ("active_positions", pa.int32()), ("active_share", pa.float64()), ("total_mass", pa.float64()),
    ("first_share", pa.list_(pa.float64())), ("trace_file", pa.string()),
])
