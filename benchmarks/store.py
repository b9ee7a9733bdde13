"""Run store latency: put, get (hit and miss), open and list, p50/p99 in milliseconds, printed as JSON.

Traces are synthetic with the built-in model's shape (SmolLM2-135M: 30 layers, 9 heads), for each
``--tokens`` length, in two kinds: the default plan (head-summed maps) and per-head maps. With
``--model SPEC`` it also traces a real prompt through ``trace_cached``: the miss (forward pass + put)
against the hit (index lookup + read), the figure a cache hit exists for.

    .venv/bin/python benchmarks/store.py [--tokens 128 512] [--repeats 50] [--dir DIR] [--model smollm2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from trace_read import synthetic_trace

MODEL_ID = "b" * 64
DISK_BYTES = 2**30  # the most one kind's copies may take on disk


def pct(samples: list[float]) -> dict:
    """p50 and p99 (nearest rank) of seconds, in milliseconds."""
    ordered = sorted(samples)
    return {"p50_ms": round(1e3 * statistics.median(ordered), 3),
            "p99_ms": round(1e3 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3)}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def default_plan_trace(t: int):
    """The synthetic trace without per-head maps: what the default plan keeps."""
    from lmxray.capture.plan import CapturePlan

    trace = synthetic_trace(t)
    trace.attention = np.ascontiguousarray(trace.attention)
    return dataclasses.replace(trace, attention_heads=None, heads=[], capture=CapturePlan().to_dict())


def measure_kind(root: Path, trace, repeats: int) -> dict:
    """Latencies on a fresh store under ``root`` holding copies of ``trace`` (one key each; ``repeats`` of them,
    fewer when they would pass DISK_BYTES, five at least)."""
    from lmxray.capture.plan import CapturePlan
    from lmxray.store import TraceStore
    from lmxray.trace.fields import ARRAYS, get_array

    size = sum(a.nbytes for f in ARRAYS if (a := get_array(trace, f.name)) is not None)
    repeats = min(repeats, max(5, DISK_BYTES // size))

    store = TraceStore(root, max_bytes=None)
    plan = CapturePlan.from_dict(trace.capture)
    keys = [store.key(MODEL_ID, f"prompt {i}", plan) for i in range(repeats)]
    records, put_s = [], []
    for i, key in enumerate(keys):
        start = time.perf_counter()
        records.append(store.put(key, trace, model_id=MODEL_ID, model_name="synthetic", prompt=f"prompt {i}",
                                 plan=plan))
        put_s.append(time.perf_counter() - start)
    get_s = [timed(lambda: store.get(k)) for k in keys]
    miss_keys = [store.key(MODEL_ID, f"absent {i}", plan) for i in range(repeats)]
    miss_s = [timed(lambda: store.get(k)) for k in miss_keys]
    open_s = [timed(lambda: store.open(r.run_id)) for r in records]
    list_s = [timed(lambda: store.list(limit=50)) for _ in range(repeats)]
    store.close()
    reopen_s = timed(lambda: TraceStore(root, max_bytes=None).close())
    return {"file_bytes": records[0].bytes, "runs": repeats, "put": pct(put_s), "get_hit": pct(get_s),
            "get_miss": pct(miss_s), "open": pct(open_s), "list_50": pct(list_s),
            "reopen_ms": round(1e3 * reopen_s, 3)}


def measure_model(root: Path, spec: str, prompt: str, repeats: int) -> dict:
    """trace_cached on a real model, warmed up first: misses (forward pass + put) on fresh prompts, then hits."""
    import lmxray
    from lmxray.store import TraceStore, model_identity, trace_cached

    model = lmxray.load(spec)
    model.trace("warm up")  # the first forward pass pays one-off costs; neither figure should carry them
    store = TraceStore(root, max_bytes=None)
    prompts = [f"{prompt} {'again ' * i}".strip() for i in range(min(repeats, 5))]
    misses, hits = [], []
    for p in prompts:
        start = time.perf_counter()
        record, _, hit = trace_cached(store, model, p)
        misses.append(time.perf_counter() - start)
        assert not hit, "a fresh prompt cannot hit"
    for i in range(repeats):
        start = time.perf_counter()
        _, _, hit = trace_cached(store, model, prompts[i % len(prompts)])
        hits.append(time.perf_counter() - start)
        assert hit
    identity = [timed(lambda: model_identity(model)) for _ in range(repeats)]
    return {"model": model.info.name, "n_tokens": record.n_tokens, "file_bytes": record.bytes,
            "miss_trace_and_put": pct(misses), "hit": pct(hits), "model_identity": pct(identity),
            "miss_over_hit_p50": round(statistics.median(misses) / statistics.median(hits), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--dir", default=None, help="where the stores go (default: a temporary folder)")
    parser.add_argument("--model", default=None, help="also time trace_cached's miss and hit on this model")
    parser.add_argument("--prompt", default="The capital of France is")
    args = parser.parse_args()
    out = {"repeats": args.repeats, "shape": "smollm2 (30 layers, 9 heads)", "traces": {}}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for t in args.tokens:
            for kind, make in (("default", default_plan_trace), ("per_head", synthetic_trace)):
                print(f"T={t} {kind}...", file=sys.stderr)
                out["traces"][f"T{t}_{kind}"] = measure_kind(Path(tmp) / f"T{t}_{kind}", make(t), args.repeats)
        if args.model:
            print(f"trace_cached on {args.model}...", file=sys.stderr)
            out["trace_cached"] = measure_model(Path(tmp) / "model", args.model, args.prompt, args.repeats)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
