"""The explorer pages in headless chromium: graph render and interaction times, printed as JSON.

Real data: `lmxray serve --model smollm2` (SmolLM2-135M, 30 layers) traces a prompt of --tokens tokens; the
page draws its attention graph and its routes graph. Synthetic scale: a 2,048-token x 30-layer routes graph
(--edges-per-token attention edges per token and layer, plus residual and MLP edges) fulfilled by Playwright
in place of the routes job, so the page's own graph code runs on it. Times are the page's: from the data's
arrival to the first frame, and per threshold change or zoom (prune + draw until the next frame).
Targets (issue 13): first render of 30 layers x 64 tokens <= 300 ms, threshold change <= 100 ms.

    .venv/bin/python benchmarks/explorer.py [--tokens 64] [--long 2048] [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TEXT = ("The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is Rome. "
        "The capital of Spain is Madrid. The capital of Portugal is Lisbon. The capital of Austria is Vienna. "
        "The capital of Poland is Warsaw. The capital of Greece is Athens. The capital of Norway is")
THRESHOLDS = [0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.5, 0.03, 0.06, 0.1]


def serve(runs: Path) -> tuple[subprocess.Popen, str]:
    """`lmxray serve --model smollm2 --port 0` and the URL it prints."""
    code = "import sys; from lmxray.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--model", "smollm2", "--runs", str(runs),
                             "--port", "0", "--device", "cpu"], stdout=subprocess.PIPE, text=True)
    url = []
    found = threading.Event()

    def read():
        for line in proc.stdout:
            if line.startswith("open http://"):
                url.append(line.split()[1].rstrip("/") + "/")
                found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(120):
        proc.kill()
        raise SystemExit("lmxray serve printed no URL in 120 s")
    return proc, url[0]


def prompt_of(tokens: int) -> tuple[str, int]:
    """The shortest word prefix of TEXT (repeated as needed) that the built-in model reads as >= ``tokens`` tokens."""
    from lmxray import load

    model = load("smollm2", device="cpu")
    words = (TEXT + " ") * (1 + tokens // 40)
    words = words.split()
    for n in range(1, len(words) + 1):
        text = " ".join(words[:n])
        count = len(model.encode(text))
        if count >= tokens:
            return text, count
    raise SystemExit(f"TEXT is shorter than {tokens} tokens")


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def synthetic_routes(tokens: int, layers: int, per_token: int, seed: int = 0) -> dict:
    """A RoutesView-shaped graph: every node reaches the last token's output through the residual chain."""
    rng = random.Random(seed)
    edges = []
    for l in range(layers):
        below = (lambda j: f"embed/0/{j}") if l == 0 else (lambda j, l=l: f"out/{l - 1}/{j}")
        for i in range(tokens):
            mid, mlp, out = f"mid/{l}/{i}", f"mlp/{l}/{i}", f"out/{l}/{i}"
            edges.append({"source": below(i), "target": mid, "kind": "residual", "layer": l, "importance": 0.5,
                          "heads": None})
            for j in rng.sample(range(i + 1), min(per_token, i + 1)):
                edges.append({"source": below(j), "target": mid, "kind": "attn", "layer": l,
                              "importance": round(rng.uniform(0.01, 0.5), 4), "heads": None})
            edges += [{"source": mid, "target": mlp, "kind": "mlp", "layer": l, "importance": 0.3, "heads": None},
                      {"source": mlp, "target": out, "kind": "mlp", "layer": l, "importance": 0.3, "heads": None},
                      {"source": mid, "target": out, "kind": "residual", "layer": l, "importance": 0.7,
                       "heads": None}]
    return {"method": "routes", "tokens": [f"t{i}" for i in range(tokens)], "position": tokens - 1,
            "threshold": 0.01, "parallel": False, "n_layers": layers, "n_heads": 9, "root": f"out/{layers - 1}/{tokens - 1}",
            "nodes": [], "edges": edges}


def measure(page, repeats: int) -> dict:
    """The open graph's first render, then threshold changes and zooms, each until the next frame."""
    page.wait_for_function("window.lmxray.ready && window.lmxray.timings && window.lmxray.timings.firstFrameMs > 0",
                           timeout=600_000)
    first = page.evaluate("({...window.lmxray.timings})")
    thresholds = page.evaluate("""async (values) => {
        const out = [];
        for (const t of values) {
            const start = performance.now();
            window.lmxray.graph.setThreshold(t);
            await new Promise((r) => requestAnimationFrame(() => r()));
            out.push(performance.now() - start);
        }
        return out;
    }""", (THRESHOLDS * repeats)[: max(repeats, len(THRESHOLDS))])
    zooms = page.evaluate("""async (n) => {
        const canvas = document.querySelector("canvas[aria-label='attention graph']");
        const box = canvas.getBoundingClientRect();
        const out = [];
        for (let i = 0; i < n; i++) {
            const start = performance.now();
            canvas.dispatchEvent(new WheelEvent("wheel", { deltaY: i < n / 2 ? -100 : 100, clientX: box.left + box.width * 0.7,
                                                           clientY: box.top + 100, bubbles: true, cancelable: true }));
            await new Promise((r) => requestAnimationFrame(() => r()));
            out.push(performance.now() - start);
        }
        return out;
    }""", 10)
    kept = page.evaluate("[window.lmxray.graph.current.kept.length, window.lmxray.graph.current.threshold]")

    def stats(xs):
        return {"median_ms": round(statistics.median(xs), 2), "max_ms": round(max(xs), 2), "n": len(xs)}

    return {"first_render_ms": round(first["firstRenderMs"], 2), "first_frame_ms": round(first["firstFrameMs"], 2),
            "threshold_change": stats(thresholds), "zoom": stats(zooms), "kept_edges_last": kept[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--long", type=int, default=2048, help="tokens of the synthetic routes graph (0: skip it)")
    ap.add_argument("--edges-per-token", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    text, n_tokens = prompt_of(a.tokens)
    out = {"chromium": None, "tokens": n_tokens, "layers": 30}
    with tempfile.TemporaryDirectory() as runs:
        proc, url = serve(Path(runs))
        try:
            t0 = time.perf_counter()
            run = post(url + "api/runs", {"model": "smollm2", "prompt": text, "plan": {"lens_all": True}})["run"]
            out["trace_s"] = round(time.perf_counter() - t0, 2)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                out["chromium"] = browser.version
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{url}?view=graph&model=smollm2&run={run['run_id']}")
                out["attention_graph"] = measure(page, a.repeats)
                print("attention graph measured", file=sys.stderr)
                page.goto(f"{url}?view=graph&model=smollm2&source=routes&run={run['run_id']}")
                out["routes_graph"] = measure(page, a.repeats)
                print("routes graph measured", file=sys.stderr)
                if a.long:
                    data = synthetic_routes(a.long, 30, a.edges_per_token)
                    body = json.dumps({"id": "bench", "kind": "routes", "state": "done", "progress": 1.0,
                                       "message": "done", "error": None, "result": data})
                    page.route("**/api/jobs/routes", lambda r: r.fulfill(status=202, body=body,
                                                                         content_type="application/json"))
                    summary = {"model": {"name": "synthetic", "n_layers": 30, "n_heads": 9, "architecture": "llama",
                                         "source": "synthetic"}, "prompt": "synthetic", "tokens": data["tokens"],
                               "token_ids": list(range(a.long)), "position": a.long - 1, "predicted_token": 0,
                               "predicted_text": "x", "confidence": 1.0, "top_k": [], "convergence": None,
                               "summary": None, "note": None}
                    page.route("**/api/runs/synthetic/summary", lambda r: r.fulfill(
                        body=json.dumps(summary), content_type="application/json"))
                    page.goto(f"{url}?view=graph&model=smollm2&source=routes&run=synthetic")
                    out["long_routes_graph"] = {"tokens": a.long, "layers": 30, "edges": len(data["edges"]),
                                                "json_mb": round(len(body) / 2**20, 1), **measure(page, a.repeats)}
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
