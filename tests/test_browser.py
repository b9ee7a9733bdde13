"""The explorer pages in a real browser: Debian's chromium driven by Playwright against a live server on loopback.

The server is `lmxray serve --port 0` in a subprocess (a free loopback port), serving a tiny random llama; every request the page makes is recorded and any that would leave loopback is refused and fails the
test. The numbers the page shows are checked against the run's trace file read back with lmxray's own reader.
Here: the prompt bar, the graph (attention and routes), the maps, permalinks, the error panel and the exports;
the other views are in test_browser_views.py, pages opened from files in test_browser_files.py, the experiments
page in test_browser_sweep.py (fixtures in browser_fixtures.py, helpers in browser_helpers.py).
Screenshots land in tests/artifacts/browser/ (gitignored).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from browser_helpers import ARTIFACTS, DISPLAY_REL_TOL, LOOPBACK, PROMPT, WAIT_MS, run_prompt, stored_trace, wait_ready

pytest_plugins = ["browser_fixtures"]
pytestmark = pytest.mark.browser

THRESHOLD = 0.03  # the tiny model attends almost uniformly over ~31 tokens (1/31 = 0.032)
ROUTES_FLOOR = 0.01  # the threshold the page asks the routes job for (web/src/pages/run-graph.ts)


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
