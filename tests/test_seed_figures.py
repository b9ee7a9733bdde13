"""The seeds' figures: grouped flow bands, the heads figure's row titles, the report's page margins."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from lmxray.analysis.convergence import convergence
from lmxray.analysis.heads import HeadScores
from lmxray.capture.plan import CapturePlan
from lmxray.models.loader import from_hf
from lmxray.render.flow_figure import DEFAULT_MIN_SHARE, MAX_BANDS, MAX_LINE_WIDTH, flow_figure, layer_bands
from lmxray.render.heads_figure import head_scores_figure
from cli_helpers import assert_user_error
from tiny_models import BosTokenizer, tiny_model

PROMPT = "hi there"
TOL = 1e-4


@pytest.fixture(scope="module")
def tiny():
    """A tiny llama's trace (per-head attention kept) and the eager attention [layer, head, q, k] of the same weights."""
    base = tiny_model("llama")
    eager = copy.deepcopy(base)
    model = from_hf(base, BosTokenizer(), "tiny-llama")
    trace = model.trace(PROMPT, plan=CapturePlan(per_head=True))
    with torch.no_grad():
        out = eager(torch.tensor([model.encode(PROMPT)]), output_attentions=True)
    return trace, torch.stack(out.attentions)[:, 0].double().numpy()


def test_layer_bands_keep_at_most_max_bands():
    bands = layer_bands(list(range(30)))
    assert len(bands) <= MAX_BANDS and [l for b in bands for l in b] == list(range(30))
    assert layer_bands(list(range(30)), 1) == [[l] for l in range(30)]
    assert layer_bands([0, 1, 2], 2) == [[0, 1], [2]]


def test_grouped_flow_edges_are_the_band_mean_of_eager_weights(tiny):
    trace, eager = tiny
    fig = flow_figure(trace, convergence(trace), group=2)
    summed = eager.sum(1)  # [layer, q, k], summed over heads
    want = np.stack([summed[[0, 1]].mean(0), summed[[2]].mean(0)])  # bands L0-L1 and L2
    heaviest = want.max()
    drawn = want[want >= DEFAULT_MIN_SHARE * heaviest]
    (edges,) = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    assert len(edges.get_segments()) == drawn.size
    widths = np.sort(edges.get_linewidths())
    assert np.max(np.abs(widths - np.sort(0.15 + (MAX_LINE_WIDTH - 0.15) * drawn / heaviest))) <= TOL * MAX_LINE_WIDTH
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["L0–L1", "L2"]
    assert "mean over each band's layers" in fig.axes[0].get_title()


def test_convergence_bar_says_which_layers_it_sums(tiny):
    trace, eager = tiny
    fig = flow_figure(trace, convergence(trace), layers=[-1])
    title = fig.axes[1].get_title()
    assert f"all 3 layers (L0–L2) and {trace.model.n_heads} heads" in title, title
    got = np.array([b.get_width() for b in fig.axes[1].patches])
    assert np.max(np.abs(got - eager[:, :, trace.position].sum((0, 1)))) <= TOL  # all layers, though one is drawn


def test_plot_group_below_one_is_a_user_error(capsys, tiny_dir, tmp_path):
    from lmxray.cli import main

    trace_file = tmp_path / "t.jsonl"
    assert main(["trace", PROMPT, "--model", str(tiny_dir), "--out", str(trace_file)]) == 0
    capsys.readouterr()
    out = tmp_path / "f.png"
    assert_user_error(capsys, ["plot", trace_file, "--group", "0", "--out", out], "group", out_file=out)


def _scores(n_layers=4, n_heads=3) -> HeadScores:
    rng = np.random.default_rng(0)
    patterns = ["previous_token", "first_token"]
    shape = (n_layers, n_heads)
    return HeadScores(model="m", layers=list(range(n_layers)), scores={p: rng.random(shape) for p in patterns},
                      skip_k=np.full(shape, 2), labels=np.full(shape, "mixed"), baseline="random init (3 seeds)",
                      baseline_mean={p: rng.random(shape) * 0.2 for p in patterns},
                      baseline_std={p: np.full(shape, 0.01) for p in patterns},
                      z={p: rng.normal(size=shape) for p in patterns})


def _text_boxes(fig: Figure):
    renderer = fig.canvas.get_renderer()
    texts = [t for f in [fig, *fig.subfigs] for t in ([f._suptitle] if f._suptitle else [])]
    texts += [ax.title for ax in fig.axes]
    return [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_text()]


def test_heads_figure_titles_do_not_overlap_and_panels_hold_the_scores():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    scores = _scores()
    fig = head_scores_figure(scores, ["previous_token", "first_token"])
    FigureCanvasAgg(fig).draw()
    boxes = _text_boxes(fig)
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            assert not box_a.overlaps(box_b), f"title {a!r} overlaps {b!r}"
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    want = [scores.scores["previous_token"], scores.scores["first_token"],
            scores.baseline_mean["previous_token"], scores.baseline_mean["first_token"]]
    assert len(images) == 4 and all(np.allclose(np.asarray(g), w) for g, w in zip(images, want))
    assert [sf._suptitle.get_text() for sf in fig.subfigs] == ["m (the model)",
                                                                "baseline: random init (3 seeds) (mean score)"]


def test_report_css_has_page_margins():
    import importlib.resources
    import re

    css = importlib.resources.files("lmxray.render").joinpath("report.css").read_text(encoding="utf-8")
    body = re.search(r"body \{([^}]*)\}", css).group(1)
    assert re.search(r"padding: 2em clamp\(1em", body), "the body has no side padding"
    assert "@page { margin" in css


def test_profile_signed_mean_and_relative_ranking_match_numpy(tiny_dir, tmp_path):
    """Signed mean ± std per layer equals numpy on the run's rows; the CV ranking sorts std/mean of |Δ|."""
    import json

    import pyarrow.parquet as pq

    from lmxray.cli import main
    from lmxray.render import experiment_figures

    corpus = tmp_path / "c.txt"
    corpus.write_text("int main() { return 0; }\n\ndef f(x): return x\n\na b c d\n")
    drawn = {}
    original = experiment_figures.profile_signed_mean
    experiment_figures.profile_signed_mean = lambda stats, path, title: (drawn.update(stats), original(stats, path, title))
    try:
        assert main(["profile", "--corpus", f"c={corpus}", "--model", str(tiny_dir), "--out", str(tmp_path / "run"),
                     "--max-tokens", "40"]) == 0
    finally:
        experiment_figures.profile_signed_mean = original
    samples = _columns(tmp_path / "run" / "samples.parquet")
    values = _pivot(samples, "sample", "mean")
    mean, std = drawn["c"]
    assert np.allclose(mean, values.mean(0), atol=1e-12) and np.allclose(std, values.std(0), atol=1e-12)
    absolute = _pivot(samples, "sample", "abs_mean")
    cv = absolute.std(0) / absolute.mean(0)
    ranking = pq.read_table(tmp_path / "run" / "ranking.parquet").to_pydict()
    assert ranking["layer_by_cv"] == list(np.argsort(-cv)) and np.allclose(ranking["abs_mean_cv"], np.sort(cv)[::-1])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["corpora"][0]["most_sensitive_layers_relative"] == list(np.argsort(-cv)[:5])
    assert (tmp_path / "run" / "profile_signed_mean.png").stat().st_size > 10_000


def _columns(path, **where) -> dict:
    """A Parquet table's columns as numpy arrays, keeping the rows whose columns equal ``where`` (no pandas)."""
    import pyarrow.parquet as pq

    data = {k: np.asarray(v) for k, v in pq.read_table(path).to_pydict().items()}
    keep = np.ones(len(next(iter(data.values()))), dtype=bool)
    for name, value in where.items():
        keep &= data[name] == value
    return {k: v[keep] for k, v in data.items()}


def _pivot(cols: dict, index: str, value: str) -> np.ndarray:
    """[sorted ``index`` values, sorted layers] grid of ``value``, as pandas' pivot would give."""
    rows, layers = sorted(set(cols[index].tolist())), sorted(set(cols["layer"].tolist()))
    grid = np.full((len(rows), len(layers)), np.nan)
    for i, layer, v in zip(cols[index].tolist(), cols["layer"].tolist(), cols[value]):
        grid[rows.index(i), layers.index(layer)] = v
    return grid


SWEEP_PAIRS = [{"id": f"{cat}-{i}", "category": cat, "intended": f"ab cd {i} ef", "contradictory": f"ab xy {i} ef"}
               for cat in ("one", "two") for i in range(4)]


@pytest.fixture(scope="module")
def sweep_run(tiny_dir, tmp_path_factory):
    """A finished sweep of 8 pairs in two categories on the tiny model, with the bands the figure drew."""
    import json

    from lmxray.cli import main
    from lmxray.render import experiment_figures

    root = tmp_path_factory.mktemp("sweep")
    (root / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in SWEEP_PAIRS))
    drawn = {}
    original = experiment_figures.divergence_curves
    experiment_figures.divergence_curves = lambda bands, *a: (drawn.update(bands), original(bands, *a))
    try:
        assert main(["sweep", str(root / "pairs.jsonl"), "--model", str(tiny_dir), "--out", str(root / "run")]) == 0
    finally:
        experiment_figures.divergence_curves = original
    return root / "run", drawn


def test_category_bands_centre_on_the_table_mean_and_are_seeded(sweep_run):
    from lmxray.analysis.bootstrap import curve_bands

    folder, drawn = sweep_run
    for cat in ("one", "two"):
        js = _pivot(_columns(folder / "layers.parquet", category=cat), "id", "js")
        mean, lo, hi = drawn[cat]
        assert np.allclose(mean, js.mean(0), atol=1e-12), f"{cat}: band centre is not the table's category mean"
        assert np.all(lo <= mean + 1e-12) and np.all(mean <= hi + 1e-12)
        assert np.all(lo >= js.min(0) - 1e-12) and np.all(hi <= js.max(0) + 1e-12)
    labels = ["a"] * 5 + ["b"] * 3
    curves = np.random.default_rng(1).random((8, 4))
    first, again = curve_bands(labels, curves), curve_bands(labels, curves)
    assert all(np.array_equal(x, y) for k in first for x, y in zip(first[k], again[k]))  # seeded: same bands
    picks = np.random.default_rng(0).integers(0, 5, size=(1000, 5))  # the documented draw for the first label
    assert np.allclose(first["a"][1], np.percentile(curves[:5][picks].mean(1), 2.5, axis=0))
    assert (folder / "divergence_by_category.png").stat().st_size > 10_000


def test_plot_pair_depth_profile_draws_the_layers_rows(capsys, sweep_run):
    from lmxray.experiments.pair_depth import read_pair_depth
    from lmxray.render.pair_figure import pair_depth_figure
    from cli_helpers import run

    folder, _ = sweep_run
    rows = _columns(folder / "layers.parquet", id="two-1")
    order = np.argsort(rows["layer"])
    rows = {k: v[order] for k, v in rows.items()}
    fig = pair_depth_figure(read_pair_depth(folder, "two-1"))
    js_line, bos_i, bos_c = fig.axes[0].lines[0], fig.axes[1].lines[0], fig.axes[1].lines[1]
    assert np.allclose(js_line.get_ydata(), rows["js"]) and np.allclose(js_line.get_xdata(), rows["layer"])
    assert np.allclose(bos_i.get_ydata(), rows["bos_share_intended"])
    assert np.allclose(bos_c.get_ydata(), rows["bos_share_contradictory"])
    code, out, err = run(capsys, "plot", folder, "--pair", "two-1")
    assert code == 0 and (folder / "pair-two-1.png").stat().st_size > 10_000, err


def test_plot_pair_user_errors(capsys, sweep_run, tmp_path):
    folder, _ = sweep_run
    out = tmp_path / "p.png"
    assert_user_error(capsys, ["plot", folder, "--pair", "nope", "--out", out], "--pair", "nope", out_file=out)
    assert_user_error(capsys, ["plot", folder, "--out", out], "--pair", out_file=out)
    assert_user_error(capsys, ["plot", folder, "--pair", "one-0", "--maps", "--out", out], "--maps", out_file=out)
    trace = tmp_path / "t.jsonl"
    trace.write_text("{}\n")
    assert_user_error(capsys, ["plot", trace, "--pair", "one-0", "--out", out], "sweep run folder", out_file=out)
    other = tmp_path / "empty"
    other.mkdir()
    assert_user_error(capsys, ["plot", other, "--pair", "one-0", "--out", out], "sweep", out_file=out)
