#!/usr/bin/env python
"""Report benchmark: seconds per ``build_report`` (figures, tables, embedded explorer data) on two traces.

    python benchmarks/report.py --repeats 5 --threads 1

``tiny``: the tiny random llama of tests/tiny_models.py (3 layers x 4 heads) on the report test's prompt;
``smollm2``: the built-in model on a short prompt. Both traces keep per-head attention, so the report draws
the flow figure and the per-head map grid. Tracing is not timed. Prints one JSON object: per trace the median
and minimum of ``--repeats`` calls after one warm-up, and the process CPU seconds per call.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

TINY_PROMPT = "see https://x.io now"
SMOLLM2_PROMPT = "The capital of France is Paris. Paris is a"


def _traces(names: list[str]) -> dict:
    """name -> (trace, decode) for each benchmarked model."""
    import lmxray
    from lmxray.capture.plan import CapturePlan

    plan = CapturePlan(per_head=True)
    traces = {}
    if "tiny" in names:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
        from tiny_models import BosTokenizer, tiny_model

        from lmxray.models.loader import from_hf

        model = from_hf(tiny_model("llama"), BosTokenizer(), "tiny-llama")
        traces["tiny"] = model.trace(TINY_PROMPT, plan=plan), model.token_text
    if "smollm2" in names:
        model = lmxray.load("smollm2", device="cpu")
        traces["smollm2"] = model.trace(SMOLLM2_PROMPT, plan=plan), model.token_text
    return traces


def _time(fn, repeats: int) -> dict:
    fn()  # warm-up: fonts, colormaps, imports
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return {"median_s": round(statistics.median(wall), 3), "min_s": round(min(wall), 3),
            "cpu_s": round(statistics.median(cpu), 3), "runs_s": [round(t, 3) for t in wall]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny", "smollm2"], choices=["tiny", "smollm2"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--format", default="png", choices=["png", "svg"])
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import lmxray
    from lmxray.render.report import build_report

    result = {"format": args.format, "repeats": args.repeats, "threads": args.threads,
              "lmxray": lmxray.__file__, "machine": platform.processor() or platform.machine(),
              "load_avg_start": round(os.getloadavg()[0], 2)}
    for name, (trace, decode) in _traces(args.models).items():
        result[name] = {"n_tokens": trace.n_tokens, "layers": len(trace.layers), "heads": len(trace.heads),
                        **_time(lambda: build_report(trace, decode=decode, figure_format=args.format),
                                args.repeats)}
    result["load_avg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
