"""The Ray engine against the local engine on the shipped sweep, start-up included; prints JSON.

    python benchmarks/scale.py                  # SmolLM2-135M fp32: local 1 process x 2 threads, Ray 2 workers x 1
                                                # thread, Ray 1 worker, 3 interleaved rounds (medians reported)
    python benchmarks/scale.py --rounds 1 --pairs 20 --model PATH   # a quicker look, or another model
    python benchmarks/scale.py --repeat 13 --modes local ray-2     # 13 copies of each pair (new ids): where
                                                                   # Ray's fixed start-up costs are paid off

Each run is a fresh process (interpreter, imports, model or card, Ray's one-machine
cluster and its workers included), so ``wall_s`` is what a user waits for; the tables
and figures written after the rows are left out (the same work for both engines).
Inside the run: ``import_s``, ``model_s`` (the model, or the Ray driver's weightless
card), ``cluster_s`` (starting Ray's one-machine cluster), ``first_part_s`` (the first
batch stored, so for Ray the workers' start-up too), and ``steady_pairs_per_s``: the
pairs stored after the first part over the time from the first part to the last.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace

MODES = {"local": ("local", None, 2), "ray-2": ("ray", 2, 1), "ray-1": ("ray", 1, 1)}  # engine, workers, threads


def child(mode: str, model: str, pairs: int, repeat: int, batch_size: int, folder: str) -> dict:
    """One run in this process: the sweep's rows on one engine, with the time each stage ended."""
    start = time.perf_counter()
    import torch

    from lmxray.engines import ModelRef, make_engine
    from lmxray.experiments.datasets import SHIPPED_PAIRS, read_pairs
    from lmxray.experiments.sweep import SweepConfig, run_sweep, sweep_store

    engine_name, workers, threads = MODES[mode]
    torch.set_num_threads(threads)
    imported = time.perf_counter()
    engine = make_engine(engine_name, ModelRef(model), workers=workers)
    driver = engine.driver_model()
    loaded = time.perf_counter()
    if engine_name == "ray":  # started here to time it apart; the engine then finds it running
        from lmxray.engines.ray_engine import connect

        connect(None)
    clustered = time.perf_counter()
    chosen = [replace(p, id=f"{p.id}#{k}") if k else p for k in range(repeat) for p in read_pairs(SHIPPED_PAIRS)[:pairs]]
    config = SweepConfig(batch_size=batch_size)
    stored = []

    def progress(done: int, total: int) -> None:
        stored.append((time.perf_counter(), done))

    run_sweep(driver, chosen, sweep_store(folder, model, config), config, progress=progress, engine=engine)
    end = time.perf_counter()
    (t_first, n_first), (t_last, n_last) = stored[1], stored[-1]  # stored[0]: before any batch
    tokens = sum(len(driver.encode(p.intended)) + len(driver.encode(p.contradictory)) for p in chosen)
    return {"mode": mode, "pairs": len(chosen), "tokens": tokens, "import_s": imported - start,
            "model_s": loaded - imported, "cluster_s": clustered - loaded, "first_part_s": t_first - start,
            "rows_s": end - start,
            "steady_pairs_per_s": (n_last - n_first) / (t_last - t_first) if t_last > t_first else None}


def measure(mode: str, args) -> dict:
    """Run one mode in a fresh process; its wall time from spawn to exit joins the child's figures."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, __file__, "--child", mode, "--model", args.model, "--pairs", str(args.pairs),
                   "--repeat", str(args.repeat), "--batch-size", str(args.batch_size),
                   "--folder", os.path.join(folder, "run")]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "wall_s": wall, "pairs_per_s": result["pairs"] / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--pairs", type=int, default=108, help="the first N shipped pairs (all 108 by default)")
    parser.add_argument("--repeat", type=int, default=1, help="each pair K times, under new ids (a longer sweep)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--child", choices=list(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model, args.pairs, args.repeat, args.batch_size, args.folder)))
        return 0
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from measure import source_state

    load_before = os.getloadavg()[0]
    runs = {mode: [] for mode in args.modes}
    for r in range(args.rounds):  # interleaved, so drift in the machine's load hits every mode alike
        for mode in args.modes:
            runs[mode].append(measure(mode, args))
            print(f"round {r + 1} {mode}: {runs[mode][-1]['wall_s']:.1f} s", file=sys.stderr)
    median = {mode: {key: statistics.median(r[key] for r in rs) for key in rs[0] if isinstance(rs[0][key], float)}
              for mode, rs in runs.items()}
    ratios = {}
    if {"local", "ray-2"} <= set(runs):
        ratios["ray2_over_local_with_startup"] = median["ray-2"]["pairs_per_s"] / median["local"]["pairs_per_s"]
        ratios["ray2_over_local_steady"] = median["ray-2"]["steady_pairs_per_s"] / median["local"]["steady_pairs_per_s"]
    if {"ray-1", "ray-2"} <= set(runs):
        ratios["ray2_over_ray1_steady"] = median["ray-2"]["steady_pairs_per_s"] / median["ray-1"]["steady_pairs_per_s"]
        ratios["ray2_over_ray1_with_startup"] = median["ray-2"]["pairs_per_s"] / median["ray-1"]["pairs_per_s"]
    print(json.dumps({"model": args.model, "pairs": args.pairs, "repeat": args.repeat,
                      "batch_size": args.batch_size, "rounds": args.rounds,
                      "cpus": os.cpu_count(), "load_avg": [load_before, os.getloadavg()[0]], **source_state(),
                      "ratios": {k: round(v, 3) for k, v in ratios.items()},
                      "median": {m: {k: round(v, 3) for k, v in d.items()} for m, d in median.items()},
                      "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
