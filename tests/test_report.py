"""The HTML report and the Jupyter summary: self-contained (no URL anywhere), every table present, every number
checked against an independent computation (eager attention, untraced logits, a hand-written logit lens)."""

from __future__ import annotations

import base64
import copy
import json
import re

import numpy as np
import pytest
import torch

from lmxray.capture.plan import CapturePlan
from lmxray.models.loader import from_hf
from lmxray.render.report import build_report
from cli_helpers import assert_user_error, run
from tiny_models import BosTokenizer, tiny_model

PROB_TOL = 1e-5  # fp32 probabilities vs the eager / hand-written reference
SHOWN_TOL = 0.5e-4 + PROB_TOL  # a number printed with 4 decimals
MASS_SHOWN_TOL = 0.5e-2 + 1e-4  # a mass printed with 2 decimals
PROMPT = "see https://x.io now"  # a URL in the prompt must not become one in the file
EXPECT = {"-1": [0, 5]}


@pytest.fixture(scope="module")
def tiny():
    """(lmxray Model, per-head trace of PROMPT, eager HF model with the same weights)."""
    base = tiny_model("llama")
    eager = copy.deepcopy(base)
    model = from_hf(base, BosTokenizer(), "tiny-llama")
    return model, model.trace(PROMPT, plan=CapturePlan(per_head=True), expect=EXPECT), eager


@pytest.fixture(scope="module")
def html(tiny):
    model, trace, _ = tiny
    return build_report(trace, decode=model.token_text)


INLINE_SCRIPTS = ['<script type="application/json" id="lmxray-data">', '<script type="module">']


def assert_offline(text: str) -> None:
    """No URL, no stylesheet link, no CSS url(); scripts only the explorer's two inline ones (its data and its
    code, no src); every image is an embedded data URI."""
    lowered = text.lower()
    for bad in ("://", "<link", "@import"):
        assert bad not in lowered, f"{bad!r} found in the report"
    scripts = re.findall(r"<script\b[^>]*>", text, re.I)
    assert scripts in ([], INLINE_SCRIPTS), f"scripts other than the explorer's inline two: {scripts}"
    outside = re.sub(r"<script\b.*?</script>", "", text, flags=re.S | re.I)
    assert "url(" not in outside.lower(), "a CSS url() reference in the report"
    sources = re.findall(r'src="([^"]*)"', outside)
    assert sources and all(s.startswith("data:image/") for s in sources), f"non-embedded sources: {sources[:3]}"
    for src in sources:
        base64.b64decode(src.split(",", 1)[1], validate=True)


def _table(text: str, caption_start: str) -> list[list[str]]:
    """The cells of the table whose caption starts with ``caption_start`` (header row dropped)."""
    match = re.search(r"<table><caption>" + re.escape(caption_start) + r".*?</table>", text, re.S)
    assert match, f"no table captioned {caption_start!r}"
    rows = re.findall(r"<tr>(.*?)</tr>", match.group(0), re.S)[1:]
    return [re.findall(r"<td>(.*?)</td>", r, re.S) for r in rows]


def test_report_is_offline_and_has_every_section(html):
    assert_offline(html)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    for title in ("Prediction and convergence", "Attention flow", "Attention maps per head", "Logit lens"):
        assert f"<h2>{title}</h2>" in html, f"section {title!r} missing"
    for caption in ("top-k candidates", "convergence at position", "summary", "logit lens"):
        assert _table(html, caption), f"table {caption!r} is empty"
    assert html.count("<img ") == 2, "the flow figure and the head grid are embedded"
    assert "x.io" in html and "https&#58;//x.io" in html, "the prompt's address is shown as text"


def test_top_k_equals_untraced_softmax(tiny, html):
    model, trace, eager = tiny
    with torch.no_grad():
        logits = eager(torch.tensor([model.encode(PROMPT)])).logits[0, -1]
    probs = torch.softmax(logits.double(), -1)
    top = torch.topk(probs, len(trace.top_k))
    rows = _table(html, "top-k candidates")
    assert [int(r[2]) for r in rows] == top.indices.tolist(), "top-k ids differ from the untraced model"
    for row, want in zip(rows, top.values.tolist()):
        assert abs(float(row[3]) - want) <= SHOWN_TOL, f"top-k prob {row[3]} vs untraced {want:.6f}"


def test_convergence_table_equals_eager_mass(tiny, html):
    model, trace, eager = tiny
    with torch.no_grad():
        att = torch.stack(eager(torch.tensor([model.encode(PROMPT)]), output_attentions=True).attentions)
    mass = att[:, 0, :, -1].double().sum((0, 1)).numpy()  # [k_pos], summed over layers and heads
    rows = _table(html, "convergence at position")
    assert len(rows) == trace.n_tokens, "the report lists every key position"
    for pos, _, shown, share, status in rows:
        k = int(pos)
        assert abs(float(shown) - mass[k]) <= MASS_SHOWN_TOL, f"position {k}: mass {shown} vs eager {mass[k]:.4f}"
        assert abs(float(share.rstrip("%")) - 100 * mass[k] / mass.sum()) <= 0.05 + 1e-3, f"position {k}: share"
        assert ("expected" if k in (0, 5) else "unexpected") in status, f"position {k}: status {status}"


def _hand_lens(model, eager) -> np.ndarray:
    """Probability of the final prediction at the last position per layer: final norm + lm_head on each
    decoder layer's output, written out by hand with hooks (independent of lmxray's capture)."""
    outputs = []
    hooks = [layer.register_forward_hook(lambda m, i, o: outputs.append(o[0] if isinstance(o, tuple) else o))
             for layer in eager.model.layers]
    with torch.no_grad():
        logits = eager(torch.tensor([model.encode(PROMPT)])).logits[0, -1]
        target = int(logits.argmax())
        probs = [torch.softmax(eager.lm_head(eager.model.norm(h[0, -1])).double(), -1)[target] for h in outputs]
    for h in hooks:
        h.remove()
    return np.array([float(p) for p in probs])


def test_logit_lens_equals_hand_computation(tiny, html):
    model, trace, eager = tiny
    want = _hand_lens(model, eager)
    rows = _table(html, "logit lens")
    assert [int(r[0]) for r in rows] == list(range(trace.model.n_layers))
    for layer, row in enumerate(rows):
        assert abs(float(row[2]) - want[layer]) <= SHOWN_TOL, f"layer {layer}: lens prob {row[2]} vs {want[layer]:.6f}"
    assert abs(want[-1] - trace.confidence) <= PROB_TOL, "the last layer's lens is the model's own prediction"


def test_jupyter_summary_has_the_same_tables(tiny, html):
    _, trace, _ = tiny
    summary = trace._repr_html_()
    assert_offline(summary.replace("</div>", "<img src=\"data:image/png;base64,AA==\">"))
    assert _table(summary, "top-k candidates") == _table(html, "top-k candidates")
    assert _table(summary, "summary") == _table(html, "summary")
    assert _table(summary, "convergence at position") == _table(html, "convergence at position")[:12]


def embedded_data(text: str) -> dict:
    match = re.search(r'<script type="application/json" id="lmxray-data">(.*?)</script>', text, re.S)
    assert match, "the report carries no explorer data"
    return json.loads(match.group(1))


def test_report_carries_the_explorer_with_the_runs_views(tiny, html):
    from lmxray.render.report import BUNDLE
    from lmxray.views import head_maps_view, lens_view, map_view, trace_view

    if not (BUNDLE / "index.html").is_file():
        pytest.skip("the explorer bundle is not built (make web)")
    model, trace, _ = tiny
    data = embedded_data(html)
    plain = lambda view: json.loads(json.dumps(view.to_dict()))  # noqa: E731  (JSON's own round trip)
    assert data["summary"] == plain(trace_view(trace, strict=False))
    assert data["lens"][str(trace.position)] == plain(lens_view(trace, trace.position, model.token_text))
    assert list(data["maps"]) == [str(layer) for layer in trace.layers]
    assert data["maps"]["1"] == plain(map_view(trace, 1))
    assert data["head_maps"]["0"] == plain(head_maps_view(trace, 0))
    assert data["run"]["prompt"] == PROMPT and "x.io" in html, "the prompt travels (its :// escaped)"


def test_large_maps_are_left_out_of_the_file_and_said(tiny, monkeypatch):
    import lmxray.render.report as report

    model, trace, _ = tiny
    monkeypatch.setattr(report, "EMBED_MAX_FLOATS", trace.attention.size - 1)
    monkeypatch.setattr(report, "EMBED_MAX_LENS", 2)
    data = report.explorer_data(trace, model.token_text)
    assert data["maps"] == {} and data["head_maps"] == {}
    assert list(data["lens"]) == [str(trace.position)], "the prediction's lens first (this trace has no other)"
    assert any("maps left out" in n for n in data["notes"]) and any("per-head maps" in n for n in data["notes"])
    assert any(f"for 2 of {len(trace.tokens)} positions" in n for n in data["notes"])


def test_report_without_the_bundle_is_static(tiny, monkeypatch, tmp_path):
    import lmxray.render.report as report

    model, trace, _ = tiny
    monkeypatch.setattr(report, "BUNDLE", tmp_path)  # nothing built there
    text = build_report(trace, decode=model.token_text)
    assert_offline(text)
    assert "<script" not in text and "<h2>Logit lens</h2>" in text
    (tmp_path / "index.html").write_text('<script type="module" src="./assets/a.js"></script>'
                                        '<link rel="stylesheet" href="./assets/a.css">')
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "a.css").write_text("body{}")
    (tmp_path / "assets" / "a.js").write_text('fetch("https://cdn.example/x.js")')  # a reference: refused
    assert "<script" not in build_report(trace, decode=model.token_text)
    (tmp_path / "assets" / "a.js").write_text("document.title = 'ok'")
    assert "document.title = 'ok'" in build_report(trace, decode=model.token_text)
    assert "<script" not in build_report(trace, decode=model.token_text, interactive=False)


def test_embedded_data_writes_numbers_json_cannot_hold_as_null(monkeypatch, tmp_path):
    import lmxray.render.report as report

    monkeypatch.setattr(report, "BUNDLE", tmp_path)
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<script type="module" src="./assets/a.js"></script>'
                                        '<link rel="stylesheet" href="./assets/a.css">')
    (tmp_path / "assets" / "a.css").write_text("body{}")
    (tmp_path / "assets" / "a.js").write_text("document.title = 'ok'")
    inf, nan = float("inf"), float("nan")
    block = report.explorer_block({"entropy": inf, "logits": [-inf, nan, 0.5], "lens": {"1": (1.0, nan)}, "n": 3})
    assert embedded_data(block) == {"entropy": None, "logits": [None, None, 0.5], "lens": {"1": [1.0, None]}, "n": 3}


def test_svg_figures_are_embedded_without_urls(tiny):
    model, trace, _ = tiny
    text = build_report(trace, decode=model.token_text, figure_format="svg", map_layers=[1], map_heads=[0])
    assert_offline(text)
    sources = re.findall(r'src="data:image/svg\+xml;base64,([^"]*)"', text)
    assert len(sources) == 2
    assert b"L1 H0" in base64.b64decode(sources[1]), "the head grid shows the chosen panel"


def test_trace_without_heads_or_lens_gets_notes(tiny):
    model, _, _ = tiny
    lean = model.trace("abc", plan=CapturePlan(lens=False))
    text = build_report(lean)
    assert_offline(text)
    assert "no per-head attention in this trace" in text and "--per-head" in text
    assert "no logit lens" in text and "CapturePlan(lens=True)" in text
    assert text.count("<img ") == 1, "only the flow figure"


# -- the CLI ------------------------------------------------------------------------------------------


def test_report_from_prompt_and_from_trace(capsys, tiny_dir, tmp_path):
    out = tmp_path / "r.html"
    code, stdout, err = run(capsys, "report", "hello there", "--model", tiny_dir, "--out", out, "--json",
                            "--expect", '{"-1": [0]}', "--twin", "--layers", "0,2", "--heads", "1")
    assert code == 0, err
    data = json.loads(stdout)
    assert data["source"] == "prompt" and data["twin"] and data["out"] == str(out)
    text = out.read_text(encoding="utf-8")
    assert_offline(text)
    assert "trained (left) and random init (right)" in text and "<h2>Logit lens</h2>" in text
    trace = tmp_path / "t.jsonl"
    assert run(capsys, "trace", "hello there", "--model", tiny_dir, "--out", trace)[0] == 0
    out2 = tmp_path / "from-trace.html"
    code, stdout, err = run(capsys, "report", trace, "--out", out2)
    assert code == 0 and "report written to" in stdout, err
    assert_offline(out2.read_text(encoding="utf-8"))


def test_head_score_section_on_hand_built_patterns(tiny):
    """Layer 0 head 1 attends only to the previous token, head 0 only to the first: the report says so."""
    from lmxray.analysis.heads import Probe, score_heads

    _, trace, _ = tiny
    n = 9  # [BOS] + a block of 4 + the block again
    prev = np.zeros((n, n))
    prev[0, 0] = 1
    prev[np.arange(1, n), np.arange(n - 1)] = 1
    first = np.zeros((n, n))
    first[:, 0] = 1
    attention = np.stack([np.stack([first, prev])] * 2)  # [layer, head, q, k]
    scores = score_heads([Probe(attention, 4, "hand-built")], "hand-built", [0, 1])
    text = build_report(trace, head_scores=scores)
    assert_offline(text)
    rows = _table(text, "top 5 heads per pattern")
    best = {r[0]: r for r in rows[::-1]}  # the first row of each pattern is its best head
    assert best["previous_token"][1:4] == ["0", "1", "1.000"], best["previous_token"]
    assert best["first_token"][1:4] == ["0", "0", "1.000"], best["first_token"]
    labels = _table(text, "head labels per layer")
    assert labels[0][:3] == ["0", "1", "1"], f"layer 0: one previous-token and one first-token head: {labels[0]}"


def test_report_bad_input(capsys, tiny_dir, tmp_path):
    out = tmp_path / "r.html"
    assert_user_error(capsys, ["report", tmp_path / "missing.jsonl", "--out", out], "no such file", out_file=out)
    assert_user_error(capsys, ["report", tmp_path, "--out", out], "is a folder", out_file=out)
    assert_user_error(capsys, ["lens", tmp_path], "is a folder")
    trace = tmp_path / "t.jsonl"
    assert run(capsys, "trace", "hi", "--model", tiny_dir, "--out", trace)[0] == 0
    assert_user_error(capsys, ["report", trace, "--twin", "--out", out], "trace file", out_file=out)
    assert_user_error(capsys, ["report", trace, "--expect", '{"-1": [0]}', "--out", out], "--expect", out_file=out)
    assert_user_error(capsys, ["report", trace, "--layers", "1", "--out", out], "no per-head attention",
                      "--per-head", out_file=out)
    assert_user_error(capsys, ["report", "hi", "--model", tiny_dir, "--layers", "7", "--out", out],
                      "layer 7 is out of range", out_file=out)
    assert_user_error(capsys, ["report", "hi", "--model", tiny_dir, "--figure-format", "pdf", "--out", out],
                      "png or svg", out_file=out)
    nowhere = tmp_path / "nope" / "r.html"
    assert_user_error(capsys, ["report", "hi", "--model", tiny_dir, "--out", nowhere], "does not exist",
                      out_file=nowhere)
    png = tmp_path / "r.png"
    assert_user_error(capsys, ["report", "hi", "--model", tiny_dir, "--out", png], "HTML", out_file=png)


# -- the built-in model ------------------------------------------------------------------------------------

FRANCE = "The capital of France is Paris. Paris is a"


@pytest.fixture(scope="module")
def smollm2_trace():
    import lmxray

    return lmxray.load("smollm2").trace(FRANCE, plan=CapturePlan(per_head=True), expect={"-1": [0, 4, 5]})


@pytest.mark.builtin
def test_builtin_flow_svg_and_report(smollm2_trace, tmp_path):
    from lmxray.analysis.convergence import convergence
    from lmxray.render.figures import save_figure
    from lmxray.render.flow_figure import flow_figure

    trace = smollm2_trace
    svg = tmp_path / "flow.svg"
    save_figure(flow_figure(trace, convergence(trace)), svg)
    text = svg.read_text(encoding="utf-8")
    for token in (" capital", " France", " Paris", " city"):
        assert token in text, f"token {token!r} missing from the flow SVG"
    html = build_report(trace)
    assert_offline(html)
    top = _table(html, "top-k candidates")[0]
    assert top[1] == "<code>&#x27; city&#x27;</code>" and abs(float(top[3]) - trace.confidence) <= SHOWN_TOL
    mass = float(_table(html, "summary")[6][1])
    assert abs(mass - 30 * 9) <= MASS_SHOWN_TOL, f"total mass {mass} != 30 layers x 9 heads"


@pytest.mark.builtin
def test_builtin_report_with_head_scores(capsys, tmp_path):
    out = tmp_path / "r.html"
    code, _, err = run(capsys, "report", "The capital of France is", "--out", out, "--head-scores",
                       "--baseline-seeds", "1", "--layers", "-1", "--heads", "0")
    assert code == 0, err
    text = out.read_text(encoding="utf-8")
    assert_offline(text)
    rows = _table(text, "top 5 heads per pattern")
    induction = [r for r in rows if r[0] == "induction"]
    assert len(induction) == 5 and float(induction[0][3]) > float(induction[0][5]), \
        f"the best induction head beats its random-init baseline: {induction[0]}"
