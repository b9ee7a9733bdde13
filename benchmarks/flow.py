#!/usr/bin/env python
"""Flow benchmark: time and peak memory of ``lmxray.flow.flow`` against the plain forward, in one run.

    python benchmarks/flow.py --model smollm2 --seq-len 256                      # CPU target: within 30 s
    python benchmarks/flow.py --synthetic qwen2.5-7b --seq-len 1024 --device cuda  # GPU: random bf16 weights

Prints one JSON object on stdout. ``forward``: the untraced forward (``Model.logits``); ``flow``: the
whole decomposition (freeze pass, every layer, attribution). Times are medians of ``--repeats`` after a
warm-up. Memory: on CUDA ``max_memory_allocated`` during the call (peak and extra over what was held
before); on CPU the process's RSS high-water mark after each mode, modes in that order (forward first).
The synthetic model keeps its weights in bf16; the decomposition holds contributions in fp32 and runs
its matmuls in ``--compute-dtype`` (bf16 matmuls accumulate in fp32).
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
from synthetic import QWEN_CONFIGS, synthetic_qwen, words

def _load(args):
    """(model, prompt text): the named model, or a random-weight one with ``--seq-len`` words."""
    import lmxray

    if args.synthetic is None:
        return lmxray.load(args.model, device=args.device, dtype=args.dtype), "The capital of France is " * 64
    return synthetic_qwen(args.synthetic, args.device), words(args.seq_len)


def _measure(fn, device, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        result = fn()
        sync(device)
        times.append(time.perf_counter() - t)
    memory = {}
    if device.type == "cuda":
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        sync(device)
        peak = torch.cuda.max_memory_allocated()
        memory = {"peak_mib": peak / 2**20, "extra_mib": (peak - before) / 2**20}
    else:
        memory = {"rss_high_water_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    return statistics.median(times), memory, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--synthetic", choices=sorted(QWEN_CONFIGS))
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", help="weights of --model (the synthetic model is bf16)")
    parser.add_argument("--compute-dtype", default=None, help="float32 or bfloat16 (default: the weights' dtype, "
                                                              "float32 unless they are bf16)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    from lmxray.flow import flow

    model, text = _load(args)
    device = model.device
    ids = model.encode(text)[: args.seq_len]
    prompt = model.tokenizer.decode(ids) if args.synthetic is None else text
    n = len(model.encode(prompt))
    compute = args.compute_dtype or ("bfloat16" if model.info.dtype == "bfloat16" else "float32")
    compute_dtype = getattr(torch, compute)
    print(f"model {model.info.name}, T = {n}, device {device}, compute {compute}", file=sys.stderr)
    forward_s, forward_mem, _ = _measure(lambda: model.logits(prompt), device, args.repeats)
    flow_s, flow_mem, result = _measure(lambda: flow(model, prompt, compute_dtype=compute_dtype), device, args.repeats)
    d, f, layers = model.info.d_model, model.hf.config.intermediate_size, model.info.n_layers
    pairs = n * (n + 1) // 2 + n
    print(json.dumps({
        "model": model.info.name, "device": str(device), "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "seq_len": n, "compute_dtype": compute, "repeats": args.repeats,
        "forward_s": round(forward_s, 4), "flow_s": round(flow_s, 3), "ratio": round(flow_s / forward_s, 1),
        "forward_memory": forward_mem, "flow_memory": flow_mem,
        "mlp_tflop": round(4 * d * f * pairs * layers / 1e12, 3), "max_error": result.max_error,
        "predicted": result.logits[0].text,
    }, indent=1))


if __name__ == "__main__":
    main()
