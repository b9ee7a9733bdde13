"""Sweep throughput against a plain batched forward (the floor) and a one-prompt-at-a-time eager loop; prints JSON.

    python benchmarks/sweep.py                         # CPU, built-in SmolLM2, the shipped pair set
    python benchmarks/sweep.py --dtype bfloat16        # the same in bf16 (all three paths)
    python benchmarks/sweep.py --synthetic qwen2.5-7b --batch-size 32  # GPU: Qwen2.5-7B dimensions, random bf16
                                                                       # weights, stand-in word-level tokenizer

All three figures come from one run over the same pairs, so their ratios hold
even on a shared, noisy machine; each path is warmed up first, and the floor and
the sweep are timed ``--repeats`` times, interleaved (medians reported). The eager loop is how the seeds measured it:
each prompt alone, ``output_attentions=True``, heads summed in Python.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

import lmxray
from lmxray.analysis.divergence import align, js_divergence, normalise
from lmxray.capture.batch import Batch, pad_token_id
from lmxray.experiments.datasets import SHIPPED_PAIRS, read_pairs
from lmxray.experiments.sweep import SweepConfig, run_sweep, sweep_store
from measure import sync
from synthetic import QWEN_CONFIGS, synthetic_qwen

def batches(model, pairs, batch_size: int):
    """The sweep's own batching: both prompts of each pair, longest pairs first."""
    ids = [(model.encode(p.intended), model.encode(p.contradictory)) for p in pairs]
    ids.sort(key=lambda pair: -max(len(x) for x in pair))
    return [[x for pair in ids[i:i + batch_size] for x in pair] for i in range(0, len(ids), batch_size)]


@torch.no_grad()
def floor_seconds(model, pairs, batch_size: int) -> float:
    """A plain batched forward over the same prompts, with the same padding, unembedding only the
    prediction position (as the sweep does): what any sweep must pay."""
    work = [Batch.from_ids(b, pad_token_id(model.tokenizer), model.device) for b in batches(model, pairs, batch_size)]
    sync(model.device)
    start = time.perf_counter()
    for batch in work:
        model.hf(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                 use_cache=False, logits_to_keep=1)
    sync(model.device)
    return time.perf_counter() - start


def sweep_seconds(model, pairs, batch_size: int) -> float:
    """The full sweep runner: lean capture, per-pair metrics, one fsynced Parquet part per batch."""
    with tempfile.TemporaryDirectory() as folder:
        config = SweepConfig(batch_size=batch_size)
        store = sweep_store(folder, model.info.name, config)
        sync(model.device)
        start = time.perf_counter()
        run_sweep(model, pairs, store, config)
        sync(model.device)
        return time.perf_counter() - start


@torch.no_grad()
def eager_loop_seconds(model, pairs) -> float:
    """One prompt at a time through an eager copy with output_attentions, heads summed per layer."""
    eager = copy.deepcopy(model.hf)
    eager.set_attn_implementation("eager")
    sync(model.device)
    start = time.perf_counter()
    for pair in pairs:
        rows = []
        for prompt in (pair.intended, pair.contradictory):
            ids = torch.tensor([model.encode(prompt)], device=model.device)
            out = eager(ids, output_attentions=True, use_cache=False)
            rows.append(normalise(torch.stack(out.attentions)[:, 0, :, -1].sum(1).float().cpu().numpy()))
        js_divergence(*align(rows[0], rows[1], "start"))
    sync(model.device)
    del eager
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--synthetic", choices=sorted(QWEN_CONFIGS),
                        help="random weights with these dimensions and a stand-in tokenizer (qwen2.5-7b: bf16, GPU)")
    parser.add_argument("--synthetic-layers", type=int, default=None, help="override the synthetic layer count")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", help="all three paths run in this dtype (auto: fp32 on CPU)")
    parser.add_argument("--pairs", type=int, default=None, help="first N shipped pairs (default: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eager-pairs", type=int, default=None, help="pairs for the slow eager loop (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="floor and sweep runs, interleaved; medians reported")
    args = parser.parse_args()
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    if args.synthetic:
        dtype = None if args.dtype == "auto" else getattr(torch, args.dtype)
        model = synthetic_qwen(args.synthetic, device, dtype, args.synthetic_layers)
    else:
        model = lmxray.load(args.model, device=device, dtype=args.dtype)
    pairs = read_pairs(SHIPPED_PAIRS)[: args.pairs]
    eager_pairs = pairs[: args.eager_pairs] if args.eager_pairs else pairs
    warm = pairs[: args.batch_size]
    floor_seconds(model, warm, args.batch_size), sweep_seconds(model, warm, args.batch_size)
    runs = {"floor": [], "sweep": []}
    for _ in range(args.repeats):
        runs["floor"].append(floor_seconds(model, pairs, args.batch_size))
        runs["sweep"].append(sweep_seconds(model, pairs, args.batch_size))
    floor, sweep = statistics.median(runs["floor"]), statistics.median(runs["sweep"])
    eager_loop_seconds(model, eager_pairs[:1])  # warm-up
    eager = eager_loop_seconds(model, eager_pairs)
    rates = {"floor": len(pairs) / floor, "sweep": len(pairs) / sweep, "eager_loop": len(eager_pairs) / eager}
    result = {
        "benchmark": "sweep", "model": model.info.name, "device": str(model.device), "dtype": model.info.dtype,
        "threads": torch.get_num_threads(), "pairs": len(pairs), "eager_pairs": len(eager_pairs),
        "batch_size": args.batch_size, "repeats": args.repeats,
        "runs": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "seconds": {"floor": round(floor, 3), "sweep": round(sweep, 3), "eager_loop": round(eager, 3)},
        "pairs_per_second": {k: round(v, 2) for k, v in rates.items()},
        "sweep_vs_floor": round(rates["sweep"] / rates["floor"], 3),
        "sweep_vs_eager_loop": round(rates["sweep"] / rates["eager_loop"], 2),
        "targets": {"sweep_vs_floor >= 0.7": bool(rates["sweep"] / rates["floor"] >= 0.7),
                    "sweep_vs_eager_loop >= 10": bool(rates["sweep"] / rates["eager_loop"] >= 10)},
        "mean_prompt_tokens": round(float(np.mean([len(model.encode(p.intended)) for p in pairs])), 1),
    }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
