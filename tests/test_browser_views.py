"""The views that run the model or put two runs side by side, in a real browser (fixtures in browser_fixtures.py):
compare, logits, flow and heads, each checked against the library's view of the same run or prompt."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
from browser_helpers import PROMPT, WAIT_MS, close, run_prompt, shown_rows, stored_trace, wait_ready

pytest_plugins = ["browser_fixtures"]
pytestmark = pytest.mark.browser


def post_trace(server, prompt: str) -> str:
    """Trace ``prompt`` through the API the page uses (same plan); the stored run's id."""
    body = json.dumps({"model": server.model, "prompt": prompt, "plan": {"per_head": True, "lens_all": True}}).encode()
    req = urllib.request.Request(f"{server.url}api/runs", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=WAIT_MS / 1000) as r:
        return json.load(r)["run"]["run_id"]


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
