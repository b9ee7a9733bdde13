"""The view layer: console tables and --json render the same view object, so their numbers agree."""

from __future__ import annotations

import json
import math

import pytest

import lmxray.views
from cli_helpers import run
from lmxray.render.console import _fmt
from lmxray.views import plain


@pytest.fixture
def built(monkeypatch):
    """Every view the CLI builds during a test, in order (the real builders, wrapped)."""
    seen = []
    for name in ("trace_view", "compare_view", "lens_view"):
        real = getattr(lmxray.views, name)

        def record(*args, _real=real, **kwargs):
            seen.append(_real(*args, **kwargs))
            return seen[-1]

        monkeypatch.setattr(lmxray.views, name, record)
    return seen


def table_rows(text: str, title: str) -> list[list[str]]:
    """The body cells of the rich table titled ``title`` in ``text`` (wrapped titles and cells skipped)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    while not lines[start].startswith(("┏", "┌")):
        start += 1
    rows = []
    for line in lines[start:]:
        if not line.startswith(("┏", "┃", "┡", "│", "┌")):
            break
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if line.startswith("│") and cells[0]:  # a wrapped cell's next line has an empty first cell
            rows.append(cells)
    return rows


def test_trace_console_and_json_numbers_come_from_one_view(capsys, tiny_dir, built):
    code, stdout, _ = run(capsys, "trace", "hello world", "--model", tiny_dir, "--json", "--top-k", "3",
                          "--expect", '{"-1": [0, 2]}')
    assert code == 0
    data = json.loads(stdout)
    assert data == built[-1].to_dict(), "--json is not the view's to_dict()"
    code, stdout, _ = run(capsys, "trace", "hello world", "--model", tiny_dir, "--top-k", "3",
                          "--expect", '{"-1": [0, 2]}')
    assert code == 0 and len(built) == 2
    view = built[-1]
    assert view.to_dict() == data, "the same trace gave a different view for the table"
    conv = table_rows(stdout, "convergence at position")
    shown = {int(r[0]): r for r in conv}
    assert len(conv) == min(len(data["convergence"]), 20)
    for row in data["convergence"][:20]:
        cells = shown[row["position"]]
        assert cells[2] == f"{row['mass']:.2f}" and cells[3] == f"{100 * row['share']:.1f}%"
        assert cells[4] == row["status"]
    top = table_rows(stdout, "top-k candidates")
    assert [(int(r[2]), r[3]) for r in top] == [(c["token_id"], f"{c['prob']:.4f}") for c in data["top_k"]]
    summary = {r[0]: r[1] for r in table_rows(stdout, "summary")}
    s = data["summary"]
    assert summary["first-position sink mass"] == f"{s['sink_mass']:.2f}"
    assert summary["active positions"] == f"{s['active_positions']} / {s['n_positions']}"
    assert summary["attention entropy (bits)"] == f"{s['entropy_bits']:.3f}"
    assert summary["entropy / log2(key positions)"] == f"{s['entropy_norm']:.3f}"
    assert summary["confidence"] == f"{s['confidence']:.4f}" == f"{data['confidence']:.4f}"


def test_compare_console_and_json_render_one_view(capsys, tiny_dir, tmp_path, built):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert run(capsys, "trace", "abc abc", "--model", tiny_dir, "--out", a)[0] == 0
    assert run(capsys, "trace", "xyz", "--model", tiny_dir, "--out", b)[0] == 0
    code, stdout, _ = run(capsys, "compare", a, b, "--json")
    assert code == 0
    data = json.loads(stdout)
    assert data == built[-1].to_dict()
    assert {"a", "b", "warning", "align", "metrics", "layers", "models"} <= set(data)  # the keys before views
    code, stdout, _ = run(capsys, "compare", a, b)
    assert code == 0 and built[-1].to_dict() == data
    metrics = {r[0]: r[1:] for r in table_rows(stdout, "comparison at the prediction position")}
    for m in data["metrics"]:
        assert metrics[m["metric"]] == [_fmt(m["a"]), _fmt(m["b"])], m["metric"]
    layers = table_rows(stdout, "per layer at the prediction position")
    assert [r[1] for r in layers] == [f"{r['js_bits']:.4f}" for r in data["layers"]]
    assert f"peak JS {data['peak_js_bits']:.4f} bits at layer {data['peak_layer']}" in stdout


def test_lens_json_keeps_its_keys_and_matches_the_table(capsys, tiny_dir, built):
    from dataclasses import fields

    from lmxray.analysis.lens import LensSummary

    code, stdout, _ = run(capsys, "lens", "abcab cab", "--model", tiny_dir, "--json")
    assert code == 0
    data = json.loads(stdout)
    assert data == built[-1].to_dict()
    code, stdout, _ = run(capsys, "lens", "abcab cab", "--model", tiny_dir)
    assert code == 0 and built[-1].to_dict() == data
    rows = table_rows(stdout, "per layer")
    assert [int(r[0]) for r in rows] == [r["layer"] for r in data["rows"]]
    assert [r[1] for r in rows] == [str(r["target_rank"]) if r["target_rank"] else f">{len(r['top'])}"
                                    for r in data["rows"]]
    assert set(data) == {"model", "prompt"} | {f.name for f in fields(LensSummary)}  # the keys before views


def test_plain_gives_json_ready_data():
    import numpy as np

    data = plain({1: (np.float32(0.5), np.int64(3)), "a": np.arange(2), "nan": math.nan})
    assert data == {"1": [0.5, 3], "a": [0, 1], "nan": None}
    json.dumps(data, allow_nan=False)


def test_flow_view_is_the_flow_json_and_splits_each_attribution(tmp_path):
    from lmxray.flow import flow, read_flow
    from lmxray.models.loader import from_hf
    from lmxray.render.flow_console import flow_json
    from lmxray.views import flow_view
    from tiny_models import BosTokenizer, tiny_model

    model = from_hf(tiny_model("llama"), BosTokenizer(), "tiny-llama")
    result = flow(model, "abc abc", tokens=("a",), versus="b")
    view = flow_view(result)
    data = view.to_dict()
    assert data == flow_json(result, None) and json.loads(json.dumps(data, allow_nan=False)) == data
    for a in data["attribution"] + [data["contrast"]]:
        assert a["sink"] + a["content"] + a["bias"] == pytest.approx(a["sum"], abs=1e-4)
        assert sum(a["contributions"]) == pytest.approx(a["sum"], abs=1e-4)
    path = tmp_path / "f.jsonl"
    result.save(path)
    again = flow_view(read_flow(path)).to_dict()
    assert again["sources"] == data["sources"] and len(again["layers"]) == len(data["layers"])


def test_flow_console_and_json_numbers_come_from_one_view(capsys, tmp_path):
    from tiny_models import save_tiny

    model = save_tiny("gpt2", tmp_path / "gpt2")
    args = ("flow", "hello world", "--model", model, "--token", "x", "--vs", "y")
    code, stdout, _ = run(capsys, *args, "--json")
    assert code == 0
    data = json.loads(stdout)
    code, stdout, _ = run(capsys, *args)
    assert code == 0
    rows = {r[0]: r[1:] for r in table_rows(stdout, "direct logit attribution")}
    parts = data["attribution"] + [data["contrast"]]
    assert rows["sum"] == [f"{x['sum']:+.4f}" for x in parts]
    assert rows["content sources"] == [f"{x['content']:+.4f}" for x in parts]
    assert rows["'<bias>'"] == [f"{x['bias']:+.4f}" for x in parts]
    layers = table_rows(stdout, "sources of the residual at position")
    assert [r[1] for r in layers] == [f"{100 * layer['total_share'][0]:.0f}%" for layer in data["layers"]]
    assert f"{data['max_error']:.2e}" in stdout


def test_report_summary_renders_the_trace_view(tiny_dir):
    import lmxray
    from lmxray.errors import LmxrayError
    from lmxray.render.report import trace_summary_html
    from lmxray.views import trace_view

    model = lmxray.load(str(tiny_dir))
    trace = model.trace("hello world")
    view, html = trace_view(trace), trace_summary_html(trace)
    s = view.convergence.summary
    for cell in (f"{s.entropy_bits:.3f}", f"{s.sink_mass:.2f}", f"{s.active_positions} / {s.n_positions}",
                 *(f"{r.mass:.2f}" for r in view.convergence.rows[:5])):
        assert f"<td>{cell}</td>" in html
    bare = model.trace("hello world", plan=lmxray.CapturePlan(attention=False, row_stats=False))
    with pytest.raises(LmxrayError):
        trace_view(bare)
    loose = trace_view(bare, strict=False)
    assert loose.convergence is None and "no convergence table" in loose.note
    assert loose.to_dict()["summary"] is None and loose.note in trace_summary_html(bare)
