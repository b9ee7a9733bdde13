"""`lmxray serve` under load, on loopback: cached-summary latency, a new trace, 500 mixed requests at 32 clients,
and the server's memory over 1,000 requests. Prints one JSON object (progress on stderr).

    .venv/bin/python benchmarks/serve.py [--model smollm2] [--summaries 300] [--mixed 500] [--clients 32]

The server runs as a child process (`lmxray serve --port 0`) on a fresh runs folder and is
stopped at the end; every request has a timeout, so the script is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

TARGETS = {"summary_p50_ms": 20.0, "summary_p99_ms": 100.0, "new_trace_s": 1.5, "rss_growth": 0.05}
TIMEOUT_S = 300.0
# ten-token prompts on SmolLM2's tokenizer (no BOS): checked against the stored runs' n_tokens
NEW_PROMPTS = ["The capital of France is the city of light and", "My favourite colour has always been a deep shade of",
               "Yesterday the weather in London was very cold and", "To bake good bread you need flour, water and",
               "The best way to learn a new language is to"]


def pct(samples: list[float]) -> dict:
    """p50, p99 (nearest rank) and max of seconds, in milliseconds."""
    ordered = sorted(samples)
    return {"n": len(ordered), "p50_ms": round(1e3 * statistics.median(ordered), 2),
            "p99_ms": round(1e3 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
            "max_ms": round(1e3 * ordered[-1], 2)}


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def start_server(model: str, runs: str, threads: int | None) -> tuple[subprocess.Popen, str]:
    """The server child and its base URL (read from the line it prints); ``threads``: torch's intra-op threads."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    command = [sys.executable, "-c", "import sys; from lmxray.cli import main; sys.exit(main())", "serve",
               "--model", model, "--runs", runs, "--port", "0", "--host", "127.0.0.1"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + TIMEOUT_S
    for line in proc.stdout:
        print(f"server: {line.rstrip()}", file=sys.stderr)
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        if found:
            url = found.group(0)
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/api/health", timeout=5).status_code == 200:
                        return proc, url
                except httpx.TransportError:
                    time.sleep(0.1)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise SystemExit("the server did not come up")


def trace(client: httpx.Client, model: str, prompt: str, **plan) -> dict:
    r = client.post("/api/runs", json={"model": model, "prompt": prompt, "plan": plan})
    r.raise_for_status()
    return r.json()


def mixed_requests(run_ids: list[str], n_layers: int, prompts: list[str], n: int, seed: int) -> list[tuple]:
    """``n`` requests: reads of stored runs (summary, maps JSON/binary, lens, convergence, top-k, listing, health)
    and traces of ``prompts`` (each several times: the first is a miss, the rest hits or waits on it)."""
    rng = random.Random(seed)
    reads = ["summary", "convergence", "top-k", "lens", "maps", "binary", "list", "health"]
    out = []
    for i in range(n):
        if i % 5 == 0:
            out.append(("trace", prompts[(i // 5) % len(prompts)]))
        else:
            out.append((rng.choice(reads), rng.choice(run_ids), rng.randrange(n_layers)))
    rng.shuffle(out)
    return out


def send(client: httpx.Client, model: str, item: tuple) -> tuple[tuple, int, dict | None]:
    kind = item[0]
    if kind == "trace":
        r = client.post("/api/runs", json={"model": model, "prompt": item[1]})
        return item, r.status_code, r.json() if r.status_code == 200 else None
    _, rid, layer = item
    url = {"summary": f"/api/runs/{rid}/summary", "convergence": f"/api/runs/{rid}/convergence",
           "top-k": f"/api/runs/{rid}/top-k", "lens": f"/api/runs/{rid}/lens", "maps": f"/api/runs/{rid}/maps/{layer}",
           "binary": f"/api/runs/{rid}/maps/{layer}?format=binary", "list": "/api/runs?limit=100",
           "health": "/api/health"}[kind]
    return item, client.get(url).status_code, None


def run_mixed(url: str, model: str, work: list[tuple], clients: int) -> tuple[list, float]:
    local = threading.local()

    def one(item):
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=TIMEOUT_S)
        return send(local.client, model, item)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, work))
    return results, time.perf_counter() - start


def floor(model: str, threads: int | None) -> dict:
    """``model.trace`` of the same prompts in this process (no HTTP, no store): what a new run cannot beat."""
    import torch

    import lmxray

    if threads:
        torch.set_num_threads(threads)
    loaded = lmxray.load(model)
    loaded.trace("warm up the kernels")
    times = []
    for prompt in NEW_PROMPTS:
        start = time.perf_counter()
        loaded.trace(prompt)
        times.append(time.perf_counter() - start)
    return {"seconds": [round(t, 3) for t in times], "median_s": round(statistics.median(times), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--summaries", type=int, default=300, help="cached summary requests timed one by one")
    parser.add_argument("--mixed", type=int, default=500, help="mixed requests at --clients concurrent clients")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the server (and of the floor)")
    args = parser.parse_args()
    out: dict = {"model": args.model, "cpus": os.cpu_count(), "threads": args.threads,
                 "load_average_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as runs:
        proc, url = start_server(args.model, runs, args.threads)
        try:
            with httpx.Client(base_url=url, timeout=TIMEOUT_S) as client:
                start = time.perf_counter()
                loaded = client.post("/api/models/load", json={"model": args.model}).json()
                out["load_s"] = round(time.perf_counter() - start, 3)
                n_layers = loaded["info"]["n_layers"]
                print(f"loaded {args.model} in {out['load_s']} s", file=sys.stderr)

                start = time.perf_counter()
                trace(client, args.model, "A first trace warms the kernels up")
                out["first_trace_s"] = round(time.perf_counter() - start, 3)
                times, tokens = [], []
                for prompt in NEW_PROMPTS:
                    start = time.perf_counter()
                    run = trace(client, args.model, prompt)
                    times.append(time.perf_counter() - start)
                    tokens.append(run["run"]["n_tokens"])
                    assert not run["hit"]
                out["new_trace"] = {"tokens": tokens, "seconds": [round(t, 3) for t in times],
                                    "median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3)}
                rid = trace(client, args.model, NEW_PROMPTS[0])["run"]["run_id"]
                samples = []
                for _ in range(args.summaries):
                    start = time.perf_counter()
                    r = client.get(f"/api/runs/{rid}/summary")
                    samples.append(time.perf_counter() - start)
                    assert r.status_code == 200
                out["cached_summary"] = pct(samples)
                print(f"cached summary {out['cached_summary']}", file=sys.stderr)

                run_ids = [trace(client, args.model, p)["run"]["run_id"] for p in NEW_PROMPTS]
                fresh = [f"Mixed load prompt number {i} asks the model" for i in range(20)]
                results, wall = run_mixed(url, args.model, mixed_requests(run_ids, n_layers, fresh, args.mixed, 0),
                                          args.clients)
                codes = [code for _, code, _ in results]
                by_prompt: dict[str, set] = {}
                for item, code, body in results:
                    if item[0] == "trace" and body is not None:
                        by_prompt.setdefault(item[1], set()).add(body["run"]["run_id"])
                listed = client.get("/api/runs?limit=1000").json()["runs"]
                stored = [r["prompt"] for r in listed]
                out["mixed"] = {"requests": len(results), "clients": args.clients, "wall_s": round(wall, 3),
                                "requests_per_s": round(len(results) / wall, 1),
                                "status_counts": {str(c): codes.count(c) for c in sorted(set(codes))},
                                "n_5xx": sum(c >= 500 for c in codes),
                                "distinct_prompts": len(by_prompt),
                                "prompts_with_two_runs": sum(len(v) > 1 for v in by_prompt.values()),
                                "lost_runs": sum(p not in stored for p in fresh),
                                "duplicated_runs": len(stored) - len(set(stored))}
                print(f"mixed {out['mixed']}", file=sys.stderr)

                steady = mixed_requests(run_ids, n_layers, [f"Steady prompt {i} for memory" for i in range(10)],
                                        1000, 1)
                rss = {}
                done = 0
                for chunk in (100, 900):
                    run_mixed(url, args.model, steady[done:done + chunk], args.clients)
                    done += chunk
                    rss[done] = rss_bytes(proc.pid)
                out["rss"] = {"after_100_mib": round(rss[100] / 2**20, 1),
                              "after_1000_mib": round(rss[1000] / 2**20, 1),
                              "growth": round(rss[1000] / rss[100] - 1, 4)}
                print(f"rss {out['rss']}", file=sys.stderr)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    out["floor_trace"] = floor(args.model, args.threads)
    out["new_trace"]["median_over_floor"] = round(out["new_trace"]["median_s"] / out["floor_trace"]["median_s"], 2)
    out["load_average_end"] = os.getloadavg()
    out["targets"] = TARGETS
    out["met"] = {"summary_p50": out["cached_summary"]["p50_ms"] <= TARGETS["summary_p50_ms"],
                  "summary_p99": out["cached_summary"]["p99_ms"] <= TARGETS["summary_p99_ms"],
                  "new_trace": out["new_trace"]["median_s"] <= TARGETS["new_trace_s"],
                  "mixed_no_5xx_lost_or_duplicated": out["mixed"]["n_5xx"] == 0 and out["mixed"]["lost_runs"] == 0
                  and out["mixed"]["duplicated_runs"] == 0 and out["mixed"]["prompts_with_two_runs"] == 0,
                  "rss_within_5pct": abs(out["rss"]["growth"]) <= TARGETS["rss_growth"]}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
