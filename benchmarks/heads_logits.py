#!/usr/bin/env python
"""Cost of `lmxray heads` and `lmxray logits`, split into their parts, against the untraced forward.

    python benchmarks/heads_logits.py --model smollm2 --twins 3 --steps 8

Prints one JSON object on stdout. Parts, timed with perf_counter (CUDA synchronised), medians over
``--repeats`` after a warm-up where marked:

* ``load_s``: loading the model; ``twin_load_s``: loading one random-init twin (median over the twins)
* ``probe_forward_s``: the probe set through the untraced forward (one batch) -- the floor
* ``probe_capture_s``: the same batch with per-head attention captured (what scoring needs)
* ``score_s``: the pure scoring on the captured maps
* ``heads_total_s``: model + twins scored end to end (what the command costs, loading included)
* ``logits_step_s``: one logit-trace step (full prefix, no KV cache); ``logits_total_s`` for ``--steps``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import torch


def timed(fn, repeats: int, device) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--twins", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()

    from lmxray.analysis.heads import score_heads, with_baseline
    from lmxray.capture.batch import Batch, pad_token_id
    from lmxray.models.loader import load
    from lmxray.probes.generate import logit_trace
    from lmxray.probes.heads import capture_probes, model_head_scores, probe_set

    start = time.perf_counter()
    model = load(args.model, device=args.device, dtype=args.dtype)
    load_s = time.perf_counter() - start
    device = model.device
    probes = probe_set(model)
    batch = Batch.from_ids([p.ids for p in probes], pad_token_id(model.tokenizer), device)

    def forward():
        with torch.no_grad():
            model.hf(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                     position_ids=batch.position_ids, use_cache=False)

    maps, layers = capture_probes(model, probes)
    result = {
        "model": model.info.name, "device": str(device), "dtype": model.info.dtype, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "platform": platform.platform(),
        "probes": len(probes), "probe_tokens": [len(p.ids) for p in probes],
        "load_s": round(load_s, 3),
        "probe_forward_s": round(timed(forward, args.repeats, device), 4),
        "probe_capture_s": round(timed(lambda: capture_probes(model, probes), args.repeats, device), 4),
        "score_s": round(timed(lambda: score_heads(maps, model.info.name, layers), args.repeats, device), 4),
    }
    result["capture_over_forward"] = round(result["probe_capture_s"] / result["probe_forward_s"], 2)

    start = time.perf_counter()
    scores = model_head_scores(model, probes)
    twin_loads, twin_scores = [], []
    for seed in range(1, args.twins + 1):
        t0 = time.perf_counter()
        twin = load(args.model, device=args.device, dtype=args.dtype, init="random", seed=seed)
        twin_loads.append(time.perf_counter() - t0)
        twin_scores.append(model_head_scores(twin, probes))
        del twin
    with_baseline(scores, twin_scores, "random")
    result["twin_load_s"] = round(statistics.median(twin_loads), 3)
    result["heads_total_s"] = round(time.perf_counter() - start + load_s, 3)

    prompt = "Once upon a time"
    result["logits_step_s"] = round(timed(lambda: logit_trace(model, prompt, steps=1), args.repeats, device), 4)
    start = time.perf_counter()
    logit_trace(model, prompt, steps=args.steps)
    result["logits_steps"] = args.steps
    result["logits_total_s"] = round(time.perf_counter() - start, 3)
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
