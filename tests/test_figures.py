"""Figures: the flow graph with its convergence bar and the per-head map grid, checked against HF eager attention;
`lmxray plot` / `lmxray maps` as a user sees them (files written, one-line errors, no file on error)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex

from lmxray.analysis.convergence import convergence
from lmxray.capture.plan import CapturePlan
from lmxray.cli import main
from lmxray.models.loader import from_hf
from lmxray.render.attention_maps import attention_map_grid, select_maps
from lmxray.render.figures import (
    EXPECTED_COLOR, UNEXPECTED_COLOR, figure_bytes, sample_indices, save_figure,
)
from lmxray.render.flow_figure import DEFAULT_MIN_SHARE, MAX_LINE_WIDTH, flow_figure
from cli_helpers import assert_user_error, run
from test_trace_io import seed_fixture_lines
from tiny_models import BosTokenizer, tiny_model

PROB_TOL = 1e-5  # a map panel's pixels vs eager output_attentions (fp32)
MASS_TOL = 1e-4  # a convergence bar (a sum of layers x heads probabilities) vs the eager sum
PROMPT = "hi there"  # tiny tokenizer: [BOS] + 8 characters -> 9 tokens
EXPECT = {"-1": [0, 3]}


def _eager_attention(hf_model, ids) -> np.ndarray:
    with torch.no_grad():
        out = hf_model(torch.tensor([ids]), output_attentions=True)
    return torch.stack(out.attentions)[:, 0].double().numpy()  # [layer, head, q, k]


@pytest.fixture(scope="module")
def tiny():
    """(lmxray Model, its traced prompt, eager attention of the same weights, twin trace, twin eager attention)."""
    base, twin_base = tiny_model("llama"), tiny_model("llama", seed=1)
    eager, twin_eager = copy.deepcopy(base), copy.deepcopy(twin_base)
    model = from_hf(base, BosTokenizer(), "tiny-llama")
    twin = from_hf(twin_base, BosTokenizer(), "random:tiny-llama@seed1")
    plan = CapturePlan(per_head=True)
    trace = model.trace(PROMPT, plan=plan, expect=EXPECT)
    twin_trace = twin.trace(PROMPT, plan=plan)
    ids = model.encode(PROMPT)
    return trace, _eager_attention(eager, ids), twin_trace, _eager_attention(twin_eager, ids)


@pytest.fixture(scope="module")
def trace_files(tiny_dir, tmp_path_factory):
    """Trace files written by `lmxray trace`: one with per-head attention, one without."""
    folder = tmp_path_factory.mktemp("traces")
    with_heads, summed = folder / "heads.jsonl", folder / "summed.jsonl"
    assert main(["trace", PROMPT, "--model", str(tiny_dir), "--per-head", "--threshold", "0",
                 "--expect", json.dumps(EXPECT), "--out", str(with_heads)]) == 0
    assert main(["trace", PROMPT, "--model", str(tiny_dir), "--out", str(summed)]) == 0
    return with_heads, summed


def _drift(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


# -- the flow figure ------------------------------------------------------------------------------------


def test_convergence_bar_equals_eager_mass(tiny):
    trace, eager, _, _ = tiny
    fig = flow_figure(trace, convergence(trace))
    bar_ax = fig.axes[1]
    bars = bar_ax.patches
    want = eager[:, :, trace.position].sum((0, 1))  # mass per key position, summed over layers and heads
    got = np.array([b.get_width() for b in bars])
    assert len(bars) == trace.n_tokens, f"{len(bars)} bars for {trace.n_tokens} key positions"
    drift = _drift(got, want)
    assert drift <= MASS_TOL, f"convergence bar drifts {drift:.3e} from the eager mass (tol {MASS_TOL})"
    colors = [to_hex(b.get_facecolor()) for b in bars]
    for pos, color in enumerate(colors):
        want_color = EXPECTED_COLOR if pos in (0, 3) else UNEXPECTED_COLOR
        assert color == want_color, f"position {pos} is coloured {color}, expected {want_color}"
    labels = [t.get_text() for t in bar_ax.texts]
    assert labels == [f"{m:.2f}" for m in want], f"bar annotations {labels} differ from the eager masses"


def test_flow_edges_follow_the_weights(tiny):
    trace, eager, _, _ = tiny
    fig = flow_figure(trace, convergence(trace))
    (edges,) = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    summed = eager.sum(1)  # [layer, q, k]
    heaviest = summed.max()
    drawn = summed[summed >= DEFAULT_MIN_SHARE * heaviest]
    assert len(edges.get_segments()) == drawn.size, f"{len(edges.get_segments())} edges drawn, want {drawn.size}"
    widths = np.sort(edges.get_linewidths())
    want = np.sort(0.15 + (MAX_LINE_WIDTH - 0.15) * drawn / heaviest)
    assert _drift(widths, want) <= MASS_TOL * MAX_LINE_WIDTH, "line widths do not follow the eager weights"
    assert f"heaviest {heaviest:.3g}" in fig.axes[0].get_title()


def test_flow_figure_renders_png_and_svg_with_token_texts(tiny, tmp_path):
    trace, *_ = tiny
    fig = flow_figure(trace, convergence(trace))
    png, svg = tmp_path / "flow.png", tmp_path / "flow.svg"
    save_figure(fig, png)
    save_figure(fig, svg)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    text = svg.read_text(encoding="utf-8")
    for label in ("&lt;bos&gt;", "0 &lt;bos&gt;", "4 t", "convergence at position 8"):
        assert label in text, f"{label!r} missing from the SVG"
    assert figure_bytes(fig, "png")[:4] == b"\x89PNG"


def test_flow_layer_choice_and_errors(tiny):
    from lmxray.errors import LmxrayError

    trace, *_ = tiny
    fig = flow_figure(trace, convergence(trace), layers=[-1])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["L2"]
    with pytest.raises(LmxrayError, match="layer 3 is out of range"):
        flow_figure(trace, convergence(trace), layers=[3])


# -- the attention-map grid --------------------------------------------------------------------------------


def test_sample_indices():
    assert sample_indices(30, 3) == [0, 15, 29]
    assert sample_indices(6, 3) == [0, 3, 5]
    assert sample_indices(9, 3) == [0, 4, 8]
    assert sample_indices(2, 3) == [0, 1]


def test_map_panels_equal_eager_with_one_scale(tiny):
    trace, eager, twin_trace, twin_eager = tiny
    selection = select_maps(trace)
    assert selection.layers == [0, 1, 2] and selection.heads == [0, 2, 3], "default: at most 3 x 3, evenly spread"
    fig = attention_map_grid(trace, selection, twin=twin_trace)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 18, f"{len(panels)} panels, want 3 layers x 3 heads x 2 models"
    scales = {(ax.images[0].norm.vmin, ax.images[0].norm.vmax) for ax in panels}
    assert scales == {(0.0, 1.0)}, f"panels do not share one colour scale: {scales}"
    for ax in panels:
        who, rest = ("twin", ax.get_title()[len("random init "):]) if ax.get_title().startswith("random") else \
            ("model", ax.get_title()[len("trained "):])
        layer, head = (int(part[1:]) for part in rest.split())
        ref = (twin_eager if who == "twin" else eager)[layer, head]
        image = ax.images[0].get_array()
        future = np.triu(np.ones_like(ref, dtype=bool), 1)
        assert np.array_equal(np.ma.getmaskarray(image), future), f"{ax.get_title()}: future positions not masked"
        drift = _drift(image.filled(0.0), ref)
        assert drift <= PROB_TOL, f"{ax.get_title()}: panel drifts {drift:.3e} from eager (tol {PROB_TOL})"
    colorbars = [ax for ax in fig.axes if not ax.images and "one linear scale" in ax.get_ylabel()]
    assert len(colorbars) == 1, "one colour bar states the shared scale"
    assert "0 to 1 for all 18 panels" in colorbars[0].get_ylabel()


def test_map_auto_scale_is_the_largest_weight_shown(tiny):
    trace, eager, _, _ = tiny
    selection = select_maps(trace, [1], [0, -1])
    fig = attention_map_grid(trace, selection, vmax=None)
    top = eager[1, [0, 3]].max()
    vmax = {ax.images[0].norm.vmax for ax in fig.axes if ax.images}
    assert len(vmax) == 1 and abs(vmax.pop() - top) <= PROB_TOL, "auto scale is not the largest weight shown"


def test_map_selection_errors(tiny):
    from lmxray.errors import LmxrayError

    trace, *_ = tiny
    with pytest.raises(LmxrayError, match="head 4 is out of range"):
        select_maps(trace, None, [4])
    with pytest.raises(LmxrayError, match="layer -4 is out of range"):
        select_maps(trace, [-4], None)
    partial = copy.copy(trace)
    partial.layers, partial.attention_heads = [0, 2], trace.attention_heads[[0, 2]]
    with pytest.raises(LmxrayError, match="layer 1 is not in the trace"):
        select_maps(partial, [1], None)


# -- the CLI ----------------------------------------------------------------------------------------------


def test_plot_writes_flow_png_and_maps_svg(capsys, trace_files, tmp_path):
    with_heads, _ = trace_files
    code, stdout, _ = run(capsys, "plot", with_heads)
    default = with_heads.with_suffix(".flow.png")
    assert code == 0 and default.exists() and default.stat().st_size > 10_000, stdout
    svg = tmp_path / "maps.svg"
    code, stdout, _ = run(capsys, "plot", with_heads, "--maps", "--layers", "0,-1", "--heads", "1", "--out", svg,
                          "--json")
    assert code == 0, stdout
    assert json.loads(stdout) == {"figure": "attention maps", "out": str(svg), "layers": [0, 2], "heads": [1],
                                  "twin": None, "vmax": 1.0}
    text = svg.read_text(encoding="utf-8")
    assert "L0 H1" in text and "L2 H1" in text
    from lmxray.trace.reader import read_trace

    for token in read_trace(with_heads).tokens:  # the tick labels are the decoded tokens
        assert f">{token}</text>" in text, f"token {token!r} missing from the SVG"


def test_plot_seed_format_trace(capsys, tmp_path):
    """A hand-made file in the rocmforge tracer's shape: bars are the summed edges, coloured by expectation."""
    seed = tmp_path / "seed.jsonl"
    seed.write_text("".join(json.dumps(r) + "\n" for r in seed_fixture_lines()))
    out = tmp_path / "seed.svg"
    code, stdout, err = run(capsys, "plot", seed, "--out", out)
    assert code == 0, err
    text = out.read_text(encoding="utf-8")
    assert "convergence at position 13" in text and "52355" in text, "token ids label the seed file's positions"
    from lmxray.trace.reader import read_trace

    trace = read_trace(seed)
    bars = flow_figure(trace, convergence(trace)).axes[1].patches
    masses = {pos: b.get_width() for pos, b in enumerate(bars)}
    hand = {0: 0.6 + 0.5 + 0.9 + 0.7, 6: 0.3, 12: 0.25, 13: 0.2}  # the fixture's edges from position 13
    for pos in range(14):
        assert masses[pos] == pytest.approx(hand.get(pos, 0.0), abs=1e-6), f"position {pos}: {masses[pos]}"
    colors = {pos: to_hex(b.get_facecolor()) for pos, b in enumerate(bars)}
    assert colors[0] == colors[4] == EXPECTED_COLOR and colors[6] == colors[13] == UNEXPECTED_COLOR


def test_plot_maps_without_per_head_names_the_option(capsys, trace_files, tmp_path):
    _, summed = trace_files
    out = tmp_path / "maps.png"
    assert_user_error(capsys, ["plot", summed, "--maps", "--out", out], "no per-head attention", "--per-head",
                      out_file=out)


@pytest.mark.parametrize("extra, words", [
    (["--maps", "--layers", "3"], ("layer 3 is out of range", "the model has 3 layers", "0..2")),
    (["--maps", "--heads", "4"], ("head 4 is out of range", "the model has 4 heads")),
    (["--maps", "--layers", "a,b"], ("not a comma-separated list",)),
    (["--maps", "--layers", "1,,2"], ("empty item",)),
    (["--maps", "--heads", "0,"], ("empty item",)),
    (["--maps", "--vmax", "0"], ("--vmax must be > 0",)),
    (["--heads", "1"], ("--maps",)),
    (["--layers", "-4"], ("layer -4 is out of range",)),
])
def test_plot_bad_choices(capsys, trace_files, tmp_path, extra, words):
    with_heads, _ = trace_files
    out = tmp_path / "fig.png"
    assert_user_error(capsys, ["plot", with_heads, "--out", out, *extra], *words, out_file=out)


def test_plot_bad_output_and_input(capsys, trace_files, tmp_path):
    with_heads, _ = trace_files
    pdf = tmp_path / "fig.pdf"
    assert_user_error(capsys, ["plot", with_heads, "--out", pdf], "unknown format", ".png or .svg", out_file=pdf)
    missing_dir = tmp_path / "nope" / "fig.png"
    assert_user_error(capsys, ["plot", with_heads, "--out", missing_dir], "does not exist", out_file=missing_dir)
    out = tmp_path / "fig.png"
    assert_user_error(capsys, ["plot", tmp_path / "missing.jsonl", "--out", out], "no such file", out_file=out)


def test_maps_command_with_twin(capsys, tiny_dir, tmp_path):
    out = tmp_path / "maps.png"
    code, stdout, err = run(capsys, "maps", PROMPT, "--model", tiny_dir, "--twin", "--layers", "1",
                            "--heads", "0,3", "--out", out, "--json")
    assert code == 0, err
    data = json.loads(stdout)
    assert data["layers"] == [1] and data["heads"] == [0, 3] and data["twin"].startswith("random:")
    assert out.read_bytes()[:4] == b"\x89PNG"
    bad = tmp_path / "bad.png"
    assert_user_error(capsys, ["maps", PROMPT, "--model", tiny_dir, "--layers", "5", "--out", bad],
                      "layer 5 is out of range", out_file=bad)


def test_long_prompt_bar_keeps_the_heaviest_positions(tiny_dir):
    import lmxray

    from lmxray.render.flow_figure import MAX_BARS

    trace = lmxray.load(str(tiny_dir)).trace("abcdefghij" * 5)  # 50 tokens
    rows = convergence(trace)
    bar_ax = flow_figure(trace, rows).axes[1]
    heaviest = sorted(r.mass for r in rows)[-MAX_BARS:]
    assert sorted(b.get_width() for b in bar_ax.patches) == pytest.approx(heaviest, abs=1e-9)
    assert f"the {MAX_BARS} heaviest of 50 positions" in bar_ax.get_title()
