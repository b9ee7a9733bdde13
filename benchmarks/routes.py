#!/usr/bin/env python
"""Routes benchmark: time and peak memory of ``lmxray.flow.routes.routes`` against the plain forward, in one run.

    python benchmarks/routes.py --model smollm2 --seq-len 64 256       # CPU: the built-in SmolLM2-135M
    python benchmarks/routes.py --seq-len 256 1024 --device cuda

Prints one JSON object on stdout, one entry per ``--seq-len`` (shortest first). ``forward``: the untraced
forward (``Model.logits``); ``routes``: the whole method (the capture pass with per-head patterns, every
layer's edge importances in chunks, the pruning). Wall and process-CPU times are medians of ``--repeats``
after a warm-up.
Memory: on CUDA ``max_memory_allocated`` during one call (peak, and extra over what was held before); on
CPU the process's RSS high-water mark after each mode (it only grows: lengths run shortest first, forward
before routes). ``dense_mib``: the per-head importances the result holds, L * H * T^2 fp32;
``gflop_importance``: the parts' elementwise work, 4 operations (scale, subtract, abs, add) per element of
every [head, query, key <= query, d_model] block.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time

import torch
from measure import sync


def _measure(fn, device: torch.device, repeats: int):
    """(median wall seconds, median process CPU seconds, memory dict, last result) of ``fn`` after a warm-up."""
    result = fn()
    times, cpu = [], []
    for _ in range(repeats):
        sync(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        sync(device)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    if device.type == "cuda":
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        sync(device)
        peak = torch.cuda.max_memory_allocated()
        memory = {"peak_mib": round(peak / 2**20, 1), "extra_mib": round((peak - before) / 2**20, 1)}
    else:
        memory = {"rss_high_water_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    return statistics.median(times), statistics.median(cpu), memory, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--seq-len", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threshold", type=float, default=0.04)
    parser.add_argument("--chunk-mib", type=float, default=None,
                        help="bound on one [head, rows, key, d_model] block (default: 4 on CPU, 256 on a GPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1: CPU times barely "
                                                                  "affected by other jobs on the cores)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    chunk = None if args.chunk_mib is None else int(args.chunk_mib * 2**20)
    import lmxray
    from lmxray.flow.routes import routes

    model = lmxray.load(args.model, device=args.device, dtype=args.dtype)
    device, info = model.device, model.info
    source = model.encode("The capital of France is Paris, and the capital of Italy is Rome. " * 64)
    runs = []
    for n in sorted(args.seq_len):
        prompt = model.tokenizer.decode(source[:n], skip_special_tokens=True)
        tokens = len(model.encode(prompt))
        pairs = tokens * (tokens + 1) // 2  # (query, key) pairs of the causal half
        print(f"model {info.name}, T = {tokens}, device {device}", file=sys.stderr)
        forward_s, forward_cpu, forward_mem, _ = _measure(lambda: model.logits(prompt), device, args.repeats)
        routes_s, routes_cpu, routes_mem, result = _measure(
            lambda: routes(model, prompt, threshold=args.threshold, chunk_bytes=chunk), device, args.repeats)
        runs.append({
            "seq_len": tokens, "forward_s": round(forward_s, 4), "routes_s": round(routes_s, 3),
            "ratio": round(routes_s / forward_s, 1), "forward_cpu_s": round(forward_cpu, 4),
            "routes_cpu_s": round(routes_cpu, 3), "cpu_ratio": round(routes_cpu / forward_cpu, 1),
            "forward_memory": forward_mem, "routes_memory": routes_mem,
            "dense_mib": round(result.heads.nbytes / 2**20, 1),
            "gflop_importance": round(4 * info.n_layers * info.n_heads * pairs * info.d_model / 1e9, 1),
            "max_error": result.max_error, "nodes": len(result.graph.nodes), "edges": len(result.graph.edges),
            "predicted": result.prediction.text,
        })
    print(json.dumps({
        "model": info.name, "layers": info.n_layers, "heads": info.n_heads, "d_model": info.d_model,
        "device": str(device), "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "threshold": args.threshold, "chunk_mib": args.chunk_mib or "default", "repeats": args.repeats, "runs": runs,
    }, indent=1))


if __name__ == "__main__":
    main()
