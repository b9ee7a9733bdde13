"""The explorer pages in a real browser: Debian's chromium driven by Playwright against a live server on loopback.

The server is `lmxray serve --port 0` in a subprocess (a free loopback port), serving a tiny random llama; every request the page makes is recorded and any that would leave loopback is refused and fails the
test. The numbers the page shows are checked against the run's trace file read back with lmxray's own reader.
Screenshots land in tests/artifacts/browser/ (gitignored).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from lmxray.server.static_files import PAGES
from tiny_models import save_tiny

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "browser"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
PROMPT = "The cat sat on the mat. The cat"
THRESHOLD = 0.03  # the tiny model attends almost uniformly over ~31 tokens (1/31 = 0.032)
DISPLAY_REL_TOL = 5e-3  # the page prints 3 significant digits
ROUTES_FLOOR = 0.01  # the threshold the page asks the routes job for (web/src/main.ts)
WAIT_MS = 60_000  # a first trace on a cold server loads the model


class LiveServe:
    """`lmxray serve --port 0` in a subprocess (the real command): its URL read from the line it prints."""

    def __init__(self, model: str, runs: Path):
        self.model, self.runs = model, runs
        code = "import sys; from lmxray.cli import main; sys.exit(main(sys.argv[1:]))"
        self.proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--model", model, "--runs", str(runs),
                                      "--port", "0", "--device", "cpu"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        found = threading.Event()

        def read():
            for line in self.proc.stdout:
                self.lines.append(line)
                if line.startswith("open http://"):
                    self.url = line.split()[1].rstrip("/") + "/"
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(60):
            self.close()
            raise AssertionError(f"lmxray serve printed no URL in 60 s: {''.join(self.lines)[-2000:]}")
        assert urlparse(self.url).hostname == "127.0.0.1", self.url

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    assert (PAGES / "index.html").is_file(), f"{PAGES}/index.html is missing: run `make web`"
    model = str(save_tiny("llama", tmp_path_factory.mktemp("tiny-llama")))
    live = LiveServe(model, tmp_path_factory.mktemp("runs"))
    yield live
    live.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: run `make dev` (it installs Debian's chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, request):
    """A fresh page whose every request is recorded; one that would leave loopback is aborted and fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    seen, outside, problems, failed = [], [], [], []

    def guard(route):
        url = route.request.url
        seen.append(url)
        host = urlparse(url).hostname or ""
        if url.startswith(("data:", "blob:", "file:")) or host in LOOPBACK:  # file: a report opened from disk
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", guard)
    pg = context.new_page()
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load resource")
          and problems.append(f"console: {m.text}"))
    pg.on("response", lambda r: r.status >= 400 and failed.append(f"HTTP {r.status} {r.url}"))
    pg.seen, pg.allow_http_errors = seen, False
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not outside, f"requests left loopback: {outside}"
    assert seen, "the page made no request at all"
    assert not problems, f"the page reported errors: {problems}"
    assert pg.allow_http_errors or not failed, f"requests failed: {failed}"


def wait_ready(page):
    page.wait_for_function("window.lmxray && window.lmxray.ready", timeout=WAIT_MS)


def run_prompt(page, server) -> str:
    """Type the prompt, press Run, wait for the graph; the run id the URL now names."""
    page.goto(server.url)
    wait_ready(page)
    page.fill("input[name=prompt]", PROMPT)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"run=[0-9a-f]+"), timeout=WAIT_MS)
    wait_ready(page)
    page.wait_for_selector("canvas[aria-label='attention graph']", timeout=WAIT_MS)
    return parse_qs(urlparse(page.url).query)["run"][0]


def stored_trace(server, run: str, tmp_path):
    """The run's trace, downloaded from the server and read by lmxray's reader (not by the page's code)."""
    from lmxray.trace.reader import read_trace

    path = tmp_path / f"{run}.safetensors"
    with urllib.request.urlopen(f"{server.url}api/runs/{run}/trace", timeout=30) as r:
        path.write_bytes(r.read())
    return read_trace(path)


def reference_prune(trace, threshold: float) -> tuple[int, int]:
    """Kept edges and reached nodes of the attention graph, by a direct walk over the head-mean maps; each reached
    node above the embeddings also keeps its residual edge (weight 1) from the same token one row down."""
    maps = np.asarray(trace.attention, dtype=np.float64) / trace.model.n_heads  # [layer, q, k]
    n_layers, T = maps.shape[0], len(trace.tokens)
    reached = np.zeros((n_layers + 1, T), bool)
    reached[n_layers, trace.position] = True
    kept = 0
    for i in range(n_layers - 1, -1, -1):
        reached[i] |= reached[i + 1]  # the residual stream
        w = np.float32(maps[i]).astype(np.float64)  # the page holds weights as float32
        edges = (w >= threshold) & np.tril(np.ones((T, T), bool)) & reached[i + 1][:, None]
        edges[trace.position + 1:] = False
        kept += int(edges.sum()) + int(reached[i + 1].sum())
        reached[i] |= edges.any(axis=0)
    return kept, int(reached.sum())


def test_page_loads_offline_with_its_prompt_bar(page, server):
    page.goto(server.url)
    wait_ready(page)
    assert page.title() == "lmxray explorer"
    page.wait_for_selector("select[name=model] option", state="attached")
    specs = page.eval_on_selector_all("select[name=model] option", "options => options.map(o => o.value)")
    assert specs == [server.model], specs
    scripts = page.eval_on_selector_all("script[src], link[href]", "els => els.map(e => e.src || e.href)")
    assert scripts and all(urlparse(s).hostname in LOOPBACK or s.startswith("data:") for s in scripts), scripts


def test_graph_renders_for_a_traced_prompt_and_matches_the_trace(page, server, tmp_path):
    run = run_prompt(page, server)
    page.evaluate(f"window.lmxray.graph.setThreshold({THRESHOLD})")
    got = page.evaluate("[window.lmxray.graph.current.kept.length, "
                        "window.lmxray.graph.current.reached.reduce((a, b) => a + b, 0)]")
    expected = reference_prune(stored_trace(server, run, tmp_path), THRESHOLD)
    assert 0 < expected[0] < 3 * 31 * 31 / 2, f"threshold {THRESHOLD} keeps {expected[0]} edges: pick one that prunes"
    assert tuple(got) == expected, f"page kept {got[0]} edges / reached {got[1]} nodes, the trace gives {expected}"
    assert str(expected[0]) in page.inner_text(".graph .readout")
    assert page.evaluate("window.lmxray.timings.firstRenderMs") > 0


def test_clicking_a_node_shows_the_lens_there(page, server, tmp_path):
    from lmxray.views import lens_view

    run = run_prompt(page, server)
    trace = stored_trace(server, run, tmp_path)
    row, token = len(trace.layers), trace.position - 2  # the top row, a token before the prediction
    point = page.evaluate(f"window.lmxray.graph.nodePoint({row}, {token})")
    page.mouse.click(point["x"], point["y"])
    panel = page.locator("aside .node-details")
    panel.locator("ol.lens-top li").first.wait_for(timeout=WAIT_MS)
    assert f"(position {token})" in panel.locator("h3").inner_text()
    ref = next(r for r in lens_view(trace, token).rows if r.layer == trace.layers[-1])
    shown = panel.locator("ol.lens-top li").all_inner_texts()
    assert len(shown) == len(ref.top)
    for text, top in zip(shown, ref.top, strict=True):
        prob = float(text.rsplit(None, 1)[-1])
        assert abs(prob - top.prob) <= DISPLAY_REL_TOL * top.prob, f"lens prob {prob} vs {top.prob} (token {top.token_id})"


def test_routes_graph_prunes_as_the_library_does(page, server):
    from lmxray import load
    from lmxray.flow.routes import routes

    run = run_prompt(page, server)
    page.goto(f"{server.url}?view=graph&run={run}&source=routes&model={server.model}")
    page.wait_for_function("window.lmxray.ready && window.lmxray.graph && window.lmxray.graph.current", timeout=WAIT_MS)
    assert f"pruned at {ROUTES_FLOOR:g} by the server" in page.inner_text("main")
    model = load(server.model, device="cpu")
    for threshold in (ROUTES_FLOOR, 0.04, 0.2):  # the server's cut, then the page pruning further
        page.evaluate(f"window.lmxray.graph.setThreshold({threshold})")
        got = page.evaluate("window.lmxray.graph.current.kept.length")
        expected = len(routes(model, PROMPT, threshold=threshold).graph.edges)
        assert got == expected > 0, f"the page keeps {got} route edges at {threshold}, the library {expected}"


def test_head_maps_share_one_scale_and_hover_shows_the_weight(page, server, tmp_path):
    run = run_prompt(page, server)
    trace = stored_trace(server, run, tmp_path)
    layer = trace.layers[1]
    page.goto(f"{server.url}?view=maps&run={run}&layer={layer}")
    wait_ready(page)
    canvas = page.locator(".maps canvas")
    heads = trace.attention_heads[trace.layers.index(layer)]  # [head, q, k]
    maps = page.evaluate("window.lmxray.maps && {vmax: window.lmxray.maps.vmax, heads: window.lmxray.maps.heads}")
    assert maps["heads"] == list(trace.heads), maps
    assert abs(maps["vmax"] - float(heads.max())) <= 1e-6, f"shared scale {maps['vmax']} vs {heads.max()}"
    q, k, head = 20, 7, 2
    box = canvas.bounding_box()
    point = page.evaluate("([h, q, k]) => window.lmxray.maps.cell(h, q, k)", [head, q, k])  # the page's layout
    page.mouse.move(box["x"] + point["x"], box["y"] + point["y"])
    tip = page.locator(".maps .tooltip")
    tip.wait_for(state="visible")
    text = tip.inner_text()
    assert text.startswith(f"head {trace.heads[head]}:") and f"({q}) →" in text and f"({k}) =" in text, text
    shown = float(text.rsplit("=", 1)[1])
    ref = float(heads[head, q, k])
    assert abs(shown - ref) <= DISPLAY_REL_TOL * ref, f"hover shows {shown}, the trace holds {ref}"


def test_a_permalink_reopens_the_view(page, server):
    run = run_prompt(page, server)
    link = f"{server.url}?view=graph&run={run}&threshold=0.2"
    page.goto(link)
    wait_ready(page)
    assert page.evaluate("window.lmxray.graph.current.threshold") == 0.2
    page.goto(f"{server.url}deep/link?view=lens&run={run}&position=3")  # a deep path gets the page too
    wait_ready(page)
    assert "position 3" in page.inner_text("main h3")
    page.reload()
    wait_ready(page)
    assert "position 3" in page.inner_text("main h3")


def test_server_errors_show_the_fix_line(page, server):
    page.allow_http_errors = True  # the unknown run's 404 is what this test asks for
    page.goto(f"{server.url}?view=graph&run={'0' * 32}")
    wait_ready(page)
    alert = page.locator(".errors .error")
    assert "no run" in alert.inner_text() and "GET /api/runs" in alert.locator(".fix").inner_text()


def test_export_gives_png_and_svg(page, server, tmp_path):
    run_prompt(page, server)
    for kind, magic in (("png", b"\x89PNG"), ("svg", b"<?xml")):
        with page.expect_download() as info:
            page.click(f".graph >> xpath=.. >> button[data-export={kind}]")
        data = Path(info.value.path()).read_bytes()
        assert data.startswith(magic), f"{kind} export starts with {data[:8]!r}"
        if kind == "svg":
            assert b"http" not in data.replace(b'xmlns="http://www.w3.org/2000/svg"', b""), "the SVG references a URL"
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "graph.svg").write_bytes(data)


def post_trace(server, prompt: str) -> str:
    """Trace ``prompt`` through the API the page uses (same plan); the stored run's id."""
    body = json.dumps({"model": server.model, "prompt": prompt, "plan": {"per_head": True, "lens_all": True}}).encode()
    req = urllib.request.Request(f"{server.url}api/runs", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=WAIT_MS / 1000) as r:
        return json.load(r)["run"]["run_id"]


def shown_rows(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(f"{selector} tbody tr",
                                     "rows => rows.map(r => [...r.cells].map(c => c.textContent))")


def close(shown: str, ref: float) -> bool:
    return abs(float(shown) - ref) <= DISPLAY_REL_TOL * abs(ref) + 1e-12


def test_compare_shows_the_librarys_per_layer_divergence(page, server, tmp_path):
    from lmxray.views import compare_view

    a = run_prompt(page, server)
    b = post_trace(server, "The dog ran in the park. The cat")
    page.goto(f"{server.url}?view=compare&run={a}&vs={b}&align=end")
    wait_ready(page)
    page.wait_for_selector("canvas[aria-label='per-layer divergence']")
    ref = compare_view(stored_trace(server, a, tmp_path), stored_trace(server, b, tmp_path), a, b, "end")
    rows = shown_rows(page, ".compare .layers")
    assert len(rows) == len(ref.layers) > 0, f"the page shows {len(rows)} layers, the library {len(ref.layers)}"
    for cells, r in zip(rows, ref.layers, strict=True):
        assert cells[0] == f"L{r.layer}"
        for text, value in zip(cells[1:], (r.js_bits, r.first_share_a, r.first_share_b, r.entropy_norm_a,
                                           r.entropy_norm_b), strict=True):
            assert close(text, value), f"layer {r.layer}: the page shows {text}, the library {value}"
    assert f"peak L{ref.peak_layer}" in page.inner_text(".compare .layers")
    metrics = shown_rows(page, ".compare .metrics")
    assert [m[0] for m in metrics] == [m.metric for m in ref.metrics]
    page.reload()  # the permalink reopens the same comparison
    wait_ready(page)
    assert shown_rows(page, ".compare .layers") == rows
    assert page.eval_on_selector("select[name=align]", "s => s.value") == "end"
    with page.expect_download() as info:
        page.click(".compare .controls button[data-export=svg]")
    assert Path(info.value.path()).read_bytes().startswith(b"<?xml")


def test_logits_view_shows_the_librarys_generation_trace_and_lens(page, server, tmp_path):
    from lmxray import load
    from lmxray.probes.generate import logit_trace
    from lmxray.views import lens_view

    run = run_prompt(page, server)
    page.goto(f"{server.url}?view=logits&run={run}&steps=4")
    wait_ready(page)
    page.wait_for_selector("canvas[aria-label='generation logit trace']")
    ref = logit_trace(load(server.model, device="cpu"), PROMPT, steps=4)
    rows = shown_rows(page, ".logits .trace")
    assert len(rows) == len(ref.steps) == 4, f"the page shows {len(rows)} steps, the library {len(ref.steps)}"
    for cells, s in zip(rows, ref.steps, strict=True):
        assert cells[0] == str(s.step) and cells[5] == s.flag, f"step {s.step}: page {cells}, library flag {s.flag}"
        for text, value in ((cells[2], s.chosen_prob), (cells[3], s.candidates[0].prob), (cells[4], s.entropy)):
            assert close(text, value), f"step {s.step}: the page shows {text}, the library {value}"
    trace = stored_trace(server, run, tmp_path)
    lens = lens_view(trace, trace.position)
    shown = shown_rows(page, ".logits .lens")
    assert [r[0] for r in shown] == [f"L{r.layer}" for r in lens.rows]
    for cells, r in zip(shown, lens.rows, strict=True):
        assert close(cells[4], r.target_prob), f"lens L{r.layer}: page p(target) {cells[4]}, library {r.target_prob}"


def test_flow_view_stacks_the_librarys_shares_and_attributes_a_contrast(page, server):
    from lmxray import load
    from lmxray.flow import flow
    from lmxray.views import flow_view

    run = run_prompt(page, server)
    page.goto(f"{server.url}?view=flow&run={run}&versus=N")
    wait_ready(page)
    page.wait_for_selector("canvas[aria-label='flow by source']")
    ref = flow_view(flow(load(server.model, device="cpu"), PROMPT, versus="N"))
    drawn = page.evaluate("window.lmxray.flow")
    for i, layer in enumerate(ref.layers):
        heights = {s["source"]: s["height"] / drawn["span"] for s in drawn["segments"] if s["layer"] == i}
        for source, share in enumerate(layer.total_share):
            got = heights.get(source, 0.0)
            assert abs(got - max(0.0, share)) <= 1e-4, f"L{layer.layer} source {source}: bar {got}, library {share}"
    c = ref.contrast
    assert c is not None and c.b["text"] == "N"
    assert "logit(“N”)" in page.inner_text(".flow .attribution h3")
    rows = shown_rows(page, ".flow .attribution")
    assert len(rows) == len(c.contributions) == len(ref.sources)
    for cells, value in zip(rows, c.contributions, strict=True):
        assert close(cells[1], value), f"source {cells[0]}: the page shows {cells[1]}, the library {value}"


def test_heads_grid_shows_the_librarys_scores_and_clicks_through_to_the_map(page, server):
    from lmxray import load
    from lmxray.probes.heads import model_head_scores, probe_set
    from lmxray.views import head_scores_view

    run = run_prompt(page, server)
    page.goto(f"{server.url}?view=heads&run={run}&baseline=none")
    wait_ready(page)
    page.wait_for_selector("canvas[aria-label='head scores']")
    model = load(server.model, device="cpu")
    ref = head_scores_view(model_head_scores(model, probe_set(model, n_repeats=2)), top=5)  # the job's defaults
    canvas = page.locator(".heads canvas").bounding_box()
    tip = page.locator(".heads .tooltip")
    for pattern, row, head in (("previous_token", 0, 1), ("induction", len(ref.layers) - 1, ref.n_heads - 1)):
        point = page.evaluate("([p, r, h]) => window.lmxray.heads.cell(p, r, h)", [pattern, row, head])
        page.mouse.move(canvas["x"] + point["x"], canvas["y"] + point["y"])
        tip.wait_for(state="visible")
        text = tip.inner_text()
        assert text.startswith(f"L{ref.layers[row]} H{head} {pattern}: score "), text
        shown = float(text.split("score ", 1)[1].split()[0].rstrip(","))
        assert close(shown, float(ref.grid.scores[pattern][row, head])), f"{text} vs {ref.grid.scores[pattern][row, head]}"
    top = shown_rows(page, ".heads .top")
    expected = [[p, f"L{t['layer']}", f"H{t['head']}"] for p in ref.shown for t in ref.top[p]]
    assert [r[:3] for r in top] == expected
    page.mouse.click(canvas["x"] + point["x"], canvas["y"] + point["y"])  # the last hovered head opens its map
    page.wait_for_url(re.compile(rf"view=maps.*layer={ref.layers[-1]}&head={ref.n_heads - 1}"))
    wait_ready(page)
    page.wait_for_selector(".maps canvas")


def test_a_sweep_run_shows_the_librarys_summary_and_a_pairs_rows(page, server, capsys):
    import pyarrow.parquet as pq
    from cli_helpers import run as run_cli

    from lmxray.views import sweep_view

    code, _, err = run_cli(capsys, "sweep", "--model", server.model, "--out", server.runs / "sw", "--limit", "4")
    assert code == 0, err
    page.goto(f"{server.url}?view=experiments&experiment=sw")
    wait_ready(page)
    page.wait_for_selector("canvas[aria-label='sweep curves']")
    ref = sweep_view(server.runs / "sw")
    rows = shown_rows(page, ".experiments .summary")
    expected = ref.categories + ref.length_groups
    assert [r[0] for r in rows] == [c["category"] for c in expected]
    for cells, c in zip(rows, expected, strict=True):
        assert cells[1] == str(c["n_pairs"]) and close(cells[5], c["mean_js"]), f"{cells} vs {c}"
        assert close(cells[2].split()[0], c["peak_layer"]), f"peak layer {cells[2]} vs {c['peak_layer']}"
    pair = pq.read_table(server.runs / "sw" / "pairs.parquet").column("id")[1].as_py()
    page.click(f".experiments .pairs tbody tr:nth-child(2)")
    page.wait_for_url(re.compile(f"pair={pair}"))
    wait_ready(page)
    layers = [r for r in pq.read_table(server.runs / "sw" / "layers.parquet").to_pylist() if r["id"] == pair]
    shown = shown_rows(page, ".experiments .pair")
    assert [int(r[0]) for r in shown] == [r["layer"] for r in layers]
    for cells, r in zip(shown, layers, strict=True):
        assert close(cells[1], r["js"]) and close(cells[2], r["bos_share_intended"]), f"{cells} vs {r}"
    page.reload()  # the permalink reopens the run and the pair
    wait_ready(page)
    assert shown_rows(page, ".experiments .pair") == shown


DROP_JS = """([name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name));
  document.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
  document.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
}"""


def test_a_dropped_trace_file_opens_as_a_run(page, server, tmp_path):
    import base64

    from lmxray import load
    from lmxray.trace.reader import read_trace
    from lmxray.views import lens_view

    path = tmp_path / "mine.jsonl"
    load(server.model, device="cpu").trace("A dropped trace of a few words").save(path)
    page.goto(f"{server.url}?view=lens")
    wait_ready(page)
    page.evaluate(DROP_JS, [path.name, base64.b64encode(path.read_bytes()).decode()])
    page.wait_for_url(re.compile(r"run=[0-9a-f]{32}"), timeout=WAIT_MS)
    wait_ready(page)
    trace = read_trace(path)
    ref = lens_view(trace, trace.position)
    assert f"position {trace.position}" in page.inner_text("main h3")
    shown = shown_rows(page, "main .table")
    assert [r[0] for r in shown] == [f"L{r.layer}" for r in ref.rows]
    for cells, r in zip(shown, ref.rows, strict=True):
        assert close(cells[4], r.target_prob), f"L{r.layer}: the page shows p {cells[4]}, the file holds {r.target_prob}"
    page.reload()  # the uploaded run's permalink reopens it
    wait_ready(page)
    assert shown_rows(page, "main .table") == shown
    page.evaluate(DROP_JS, ["weights.bin", "AAAA"])  # refused in the page, with the fix, before any upload
    assert ".safetensors" in page.locator(".errors .error .fix").inner_text()


def test_a_report_file_opens_the_explorer_offline(page, server, tmp_path):
    from lmxray import load
    from lmxray.capture.plan import CapturePlan
    from lmxray.render.report import build_report, write_report
    from lmxray.views import lens_view

    model = load(server.model, device="cpu")
    trace = model.trace(PROMPT, plan=CapturePlan(per_head=True))
    path = tmp_path / "report.html"
    write_report(build_report(trace, decode=model.token_text), path)
    page.goto(path.as_uri())
    wait_ready(page)
    page.wait_for_selector("canvas[aria-label='attention graph']")
    assert all(u.startswith(("file:", "data:", "blob:")) for u in page.seen), f"the report asked for {page.seen}"
    page.click("nav.tabs >> text=lens")
    wait_ready(page)
    ref = lens_view(trace, trace.position, model.token_text)
    shown = shown_rows(page, "main .table")
    assert [r[0] for r in shown] == [f"L{r.layer}" for r in ref.rows]
    for cells, r in zip(shown, ref.rows, strict=True):
        assert close(cells[4], r.target_prob), f"L{r.layer}: the report shows {cells[4]}, the library {r.target_prob}"
    page.click("nav.tabs >> text=maps")
    wait_ready(page)
    assert page.evaluate("window.lmxray.maps.heads") == list(trace.heads)
    page.reload()  # the file's own permalink reopens the view
    wait_ready(page)
    assert "view=maps" in page.url and page.evaluate("window.lmxray.maps.heads") == list(trace.heads)


def test_a_flow_widget_page_shows_the_librarys_attribution(page, server, tmp_path):
    from lmxray import load
    from lmxray.flow import flow
    from lmxray.render.widget import explorer_page
    from lmxray.views import flow_view

    f = flow(load(server.model, device="cpu"), PROMPT)
    path = tmp_path / "widget.html"
    path.write_text(explorer_page(f), encoding="utf-8")  # the document the notebook's frame shows
    page.goto(path.as_uri())
    wait_ready(page)
    page.wait_for_selector("canvas[aria-label='flow by source']")
    ref = flow_view(f).attribution[0]
    rows = shown_rows(page, ".flow .attribution")
    assert len(rows) == len(ref.contributions)
    for cells, value in zip(rows, ref.contributions, strict=True):
        assert close(cells[1], value), f"source {cells[0]}: the widget shows {cells[1]}, the library {value}"
    assert all(u.startswith(("file:", "data:", "blob:")) for u in page.seen), f"the widget asked for {page.seen}"
