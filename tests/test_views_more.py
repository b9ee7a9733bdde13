"""The map, logit-trace, head-score and run-folder views: values against their sources, and every output renders them."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import lmxray.views
from cli_helpers import run
from lmxray.capture.plan import CapturePlan
from lmxray.errors import LmxrayError
from lmxray.models.loader import from_hf
from lmxray.views import head_maps_view, head_scores_view, logits_view, map_view, profile_view, sweep_view
from test_views import table_rows
from tiny_models import BosTokenizer, tiny_model

PROB_TOL = 1e-5  # one head's map vs HF eager output_attentions (fp32)
SUM_TOL = 1e-4  # the head-summed map (4 heads) vs the sum of the eager heads
ROUND_TOL = 5e-7  # a per-head score rounded to 6 decimals vs the unrounded grid
MEAN_TOL = 1e-9  # a summary mean vs numpy's mean over the stored per-pair rows (float64 both)
PROMPT = "hi there"


def drift(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


@pytest.fixture(scope="module")
def traced():
    """(trace with per-head maps of heads 0, 1, 3 at layers 0 and 2; eager attention [layer, head, q, k])."""
    base = tiny_model("llama")
    eager = copy.deepcopy(base)
    model = from_hf(base, BosTokenizer(), "tiny-llama")
    trace = model.trace(PROMPT, plan=CapturePlan(per_head=True, layers=(0, 2), heads=(0, 1, 3)))
    with torch.no_grad():
        out = eager(torch.tensor([model.encode(PROMPT)]), output_attentions=True)
    return trace, torch.stack(out.attentions)[:, 0].double().numpy()


def test_map_view_holds_the_stored_maps_and_matches_eager(traced):
    trace, eager = traced
    summed = map_view(trace, -1)
    assert (summed.layer, summed.head, summed.tokens) == (2, None, trace.tokens)
    assert summed.values.dtype == np.float32 and np.array_equal(summed.values, trace.attention[1])
    d = drift(summed.values, eager[2].sum(0))
    assert d <= SUM_TOL, f"head-summed map of layer 2 drifts {d:.2e} from the eager sum over heads (tol {SUM_TOL})"
    assert summed.vmax == pytest.approx(float(trace.attention.max())), "the scale is not shared over the layers"
    one = map_view(trace, 0, head=-1)
    assert (one.layer, one.head) == (0, 3)
    d = drift(one.values, eager[0, 3])
    assert d <= PROB_TOL, f"layer 0 head 3 drifts {d:.2e} from eager (tol {PROB_TOL})"
    want = max(eager[0, 3].max(), eager[2, 3].max())
    assert abs(one.vmax - want) <= PROB_TOL, f"head 3's scale {one.vmax} is not its largest weight {want}"
    assert map_view(trace, 0, 3, vmax=1.0).vmax == 1.0
    raw, shape = one.to_bytes()
    assert shape == (trace.n_tokens, trace.n_tokens) and len(raw) == 4 * trace.n_tokens ** 2
    assert np.array_equal(np.frombuffer(raw, dtype="<f4").reshape(shape), one.values)
    data = one.to_dict()
    assert data["values"] == one.values.tolist() and json.loads(json.dumps(data, allow_nan=False)) == data


def test_head_maps_view_shares_one_scale(traced):
    trace, eager = traced
    view = head_maps_view(trace, 2, [3, 0, -1])
    assert view.heads == [3, 0] and view.values.shape == (2, trace.n_tokens, trace.n_tokens)
    for i, h in enumerate(view.heads):
        d = drift(view.values[i], eager[2, h])
        assert d <= PROB_TOL, f"layer 2 head {h} drifts {d:.2e} from eager (tol {PROB_TOL})"
    want = eager[2, [3, 0]].max()
    assert abs(view.vmax - want) <= PROB_TOL, f"shared scale {view.vmax}, the largest weight shown is {want}"
    assert head_maps_view(trace, 0).heads == [0, 1, 3], "default: every captured head"
    raw, shape = view.to_bytes()
    assert np.array_equal(np.frombuffer(raw, dtype="<f4").reshape(shape), view.values)


@pytest.mark.parametrize("call, words", [
    (lambda t: map_view(t, 5), "layer 5 is out of range"),
    (lambda t: map_view(t, 1), "layer 1 is not in the trace"),
    (lambda t: map_view(t, 0, head=2), "head 2 is not in the trace"),
    (lambda t: map_view(t, True), "layer must be an integer"),
    (lambda t: map_view(t, 0, vmax=0.0), "vmax must be"),
    (lambda t: head_maps_view(t, 0, []), "no heads chosen"),
])
def test_map_views_refuse_bad_choices(traced, call, words):
    with pytest.raises(LmxrayError, match=words):
        call(traced[0])


def test_maps_of_a_trace_without_them_name_the_capture_option(traced):
    trace = copy.copy(traced[0])
    trace.attention_heads, trace.heads = None, []
    with pytest.raises(LmxrayError, match=r"no per-head attention maps.*--per-head.*CapturePlan\(per_head=True\)"):
        head_maps_view(trace, 0)
    with pytest.raises(LmxrayError, match="no per-head attention maps"):
        map_view(trace, 0, head=0)
    trace.attention = None
    with pytest.raises(LmxrayError, match="no head-summed attention maps"):
        map_view(trace, 0)


def test_plot_maps_json_renders_the_views(capsys, tmp_path, tiny_dir, monkeypatch):
    built = []
    real = lmxray.views.head_maps_view
    monkeypatch.setattr(lmxray.views, "head_maps_view", lambda *a, **k: built.append(real(*a, **k)) or built[-1])
    path = tmp_path / "t.jsonl"
    assert run(capsys, "trace", PROMPT, "--model", tiny_dir, "--per-head", "--threshold", "0", "--out", path)[0] == 0
    code, stdout, err = run(capsys, "plot", path, "--maps", "--layers", "0,-1", "--heads", "1,3", "--vmax", "auto",
                            "--out", tmp_path / "m.png", "--json")
    assert code == 0, err
    data = json.loads(stdout)
    assert [v.layer for v in built] == data["layers"] == [0, 2] and built[0].heads == data["heads"] == [1, 3]
    assert data["vmax"] == max(float(v.values.max()) for v in built), "auto: the largest weight over the panels"


def test_logits_view_is_the_trace_with_its_thresholds_and_the_cli_renders_it(capsys, tiny_dir, tmp_path):
    import lmxray
    from lmxray.probes.generate import CONFIDENT, NO_IDEA, confidence_flag, logit_trace

    result = logit_trace(lmxray.load(str(tiny_dir)), PROMPT, steps=3, top_k=2)
    view = logits_view(result)
    assert view.to_dict() == {**asdict(result), "thresholds": {"confident": CONFIDENT, "no_idea": NO_IDEA}}
    for s in view.steps:
        assert s.flag == confidence_flag(s.candidates[0].prob)
    out = tmp_path / "steps.json"
    code, stdout, _ = run(capsys, "logits", PROMPT, "--model", tiny_dir, "--steps", 3, "--top-k", 2, "--json",
                          "--out", out)
    assert code == 0 and json.loads(stdout) == json.loads(out.read_text()) == view.to_dict()
    code, stdout, _ = run(capsys, "logits", PROMPT, "--model", tiny_dir, "--steps", 3, "--top-k", 2)
    assert code == 0
    for s in view.steps:
        rows = table_rows(stdout, f"step {s.step}:")
        assert [(r[2], r[3], r[4]) for r in rows] == [(str(c.token_id), f"{c.prob:.4f}", f"{c.logit:.3f}")
                                                      for c in s.candidates]
        assert f"entropy {s.entropy:.3f} nats" in stdout
    assert f"confident top-1 > {CONFIDENT}, no idea top-1 < {NO_IDEA}" in stdout


def test_head_scores_view_against_hand_made_heads():
    from lmxray.analysis.heads import PATTERNS, Probe, score_heads, with_baseline

    t, n = 9, 4  # a repeated block of 4 after BOS: [BOS] a b c d a b c d
    prev, first = np.zeros((t, t)), np.zeros((t, t))
    prev[0, 0], prev[np.arange(1, t), np.arange(t - 1)] = 1.0, 1.0
    first[:, 0] = 1.0
    attention = np.stack([np.stack([prev, first])])  # [layer, head, q, k]: head 0 previous token, head 1 the sink
    scores = with_baseline(score_heads([Probe(attention, repeat=n)], "hand", [0]),
                           [score_heads([Probe(attention[:, ::-1], repeat=n)], "b", [0])], "swapped")
    view = head_scores_view(scores, ["previous_token", "first_token"], top=1)
    assert view.grid.scores["previous_token"][0].tolist() == [1.0, 0.0], "head 0 attends to q-1 on every row"
    assert view.grid.scores["first_token"][0].tolist() == [0.0, 1.0]
    assert view.top == {"previous_token": [scores.top_rows("previous_token", 1)[0]],
                        "first_token": [scores.top_rows("first_token", 1)[0]]}
    assert (view.top["previous_token"][0]["head"], view.top["first_token"][0]["head"]) == (0, 1)
    assert list(view.grid.labels[0]) == ["previous_token", "first_token"]
    for entry in view.heads:
        for p in PATTERNS:
            want = view.grid.scores[p][0, entry["head"]]
            if not np.isnan(want):
                assert abs(entry["scores"][p] - want) <= ROUND_TOL, f"head {entry['head']} {p}"
    z = (1.0 - 0.5) / max(0.5, 0.02)  # the baseline pools heads 1 and 0 of the swapped maps: mean 0.5, std 0.5
    assert view.grid.z["previous_token"][0, 0] == pytest.approx(z)
    data = view.to_dict()
    assert data["grid"]["z"]["previous_token"][0][0] == pytest.approx(z) and data["label_counts"] == {
        "0": {p: int(p in ("previous_token", "first_token")) for p in (*PATTERNS, "mixed")}}
    json.dumps(data, allow_nan=False)


def test_heads_cli_json_and_table_render_one_view(capsys, tiny_dir, monkeypatch):
    built = []
    real = lmxray.views.head_scores_view
    monkeypatch.setattr(lmxray.views, "head_scores_view", lambda *a, **k: built.append(real(*a, **k)) or built[-1])
    args = ("heads", "--model", tiny_dir, "--baseline-seeds", 1, "--patterns", "previous_token,induction", "--top", 2)
    code, stdout, _ = run(capsys, *args, "--json")
    assert code == 0
    data = json.loads(stdout)
    assert data == built[-1].to_dict()
    assert {"model", "baseline", "patterns", "heads", "top", "label_counts", "probes"} <= set(data)  # as before
    code, stdout, _ = run(capsys, *args)
    assert code == 0 and built[-1].to_dict() == data
    start = stdout.index("top heads per pattern")
    cells = [[c.strip() for c in line.strip().strip("│").split("│")] for line in stdout[start:].splitlines()]
    rows = [r for r in cells[:next(i for i, r in enumerate(cells) if r[0].startswith("labels per layer"))]
            if len(r) == 6 and r[1].replace(".", "").isdigit()]  # a pattern's later rows leave its cell empty
    want = [h for p in ("previous_token", "induction") for h in data["top"][p]]
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        (f"{h['layer']}.{h['head']}", f"{h['score']:.3f}", f"{h['baseline']:.3f}", f"{h['z']:.1f}") for h in want]


@pytest.fixture(scope="module")
def sweep_folder(tiny_dir, tmp_path_factory):
    from lmxray.cli import main
    from test_sweep import write_pairs

    root = tmp_path_factory.mktemp("sweep-view")
    folder = root / "run"
    assert main(["sweep", str(write_pairs(root / "pairs.jsonl", 7)), "--model", str(tiny_dir), "--out", str(folder),
                 "--batch-size", "4"]) == 0
    return folder


def test_sweep_view_against_the_stored_pairs_and_the_cli(capsys, sweep_folder):
    view = sweep_view(sweep_folder)
    pairs = pq.read_table(sweep_folder / "pairs.parquet").to_pydict()
    assert view.pairs == len(pairs["id"]) == 7 and view.run == str(sweep_folder)
    for row in view.categories:
        mine = [js for js, c in zip(pairs["mean_js"], pairs["category"]) if row["category"] in (c, "all")]
        assert row["n_pairs"] == len(mine)
        d = abs(row["mean_js"] - float(np.mean(mine)))
        assert d <= MEAN_TOL, f"category {row['category']}: mean JS drifts {d:.2e} from the pairs table"
    code, stdout, _ = run(capsys, "sweep", "--summary", sweep_folder, "--json")
    assert code == 0 and json.loads(stdout) == view.to_dict() and "run_stats" not in json.loads(stdout)
    code, stdout, _ = run(capsys, "sweep", "--summary", sweep_folder)
    assert code == 0
    lines = {line.split()[0]: line.split() for line in stdout.splitlines() if line.split()}
    for row in view.categories + view.length_groups:
        cells = lines[row["category"].split()[0]] if row["category"] != "length differs" else lines["length"]
        assert f"{row['mean_js']:.4f}" in cells, f"{row['category']}: the table's JS is not the view's"


def test_sweep_curves_view_against_the_stored_layers_and_bos_profile(sweep_folder, tmp_path):
    import shutil

    from lmxray.views.experiments_curves import sweep_curves_view

    view = sweep_curves_view(sweep_folder)
    layers = pq.read_table(sweep_folder / "layers.parquet").to_pydict()
    profile = pq.read_table(sweep_folder / "bos_profile.parquet").to_pydict()
    order = list(dict.fromkeys(layers["category"]))
    assert [c["category"] for c in view.categories] == order and view.layers == 3 and view.level == 0.95
    for row in view.categories:
        rows = [(pid, layer, js) for pid, c, layer, js in zip(layers["id"], layers["category"], layers["layer"],
                                                               layers["js"]) if c == row["category"]]
        assert row["n_pairs"] == len({pid for pid, _, _ in rows})
        want = [np.mean([js for _, layer, js in rows if layer == k]) for k in range(view.layers)]
        d = drift(row["js_mean"], want)
        assert d <= MEAN_TOL, f"category {row['category']}: mean JS curve drifts {d:.2e} from the layers table"
        assert all(lo <= m <= hi for lo, m, hi in zip(row["js_lo"], row["js_mean"], row["js_hi"])), row
        shares = {layer: s for c, layer, s in zip(profile["category"], profile["layer"], profile["bos_share"])
                  if c == row["category"]}
        assert row["first_share"] == [shares.get(k) for k in range(view.layers)]
    assert json.loads(json.dumps(view.to_dict())) == view.to_dict(), "the view is not plain JSON data"
    broken = tmp_path / "broken"
    shutil.copytree(sweep_folder, broken)
    (broken / "layers.parquet").unlink()
    with pytest.raises(LmxrayError, match="cannot read .*layers.parquet") as caught:
        sweep_curves_view(broken)
    assert "\n" not in str(caught.value), "the error is not one line"


def test_profile_view_ranks_the_stored_variances_and_the_cli_renders_it(capsys, tiny_dir, tmp_path):
    from lmxray.analysis.profile_stats import most_sensitive_layers

    corpus = tmp_path / "code.txt"
    corpus.write_text("int main() { return 0; }\n\ndef f(x):\n    return x + 1\n\na b c\n")
    folder = tmp_path / "run"
    code, stdout, _ = run(capsys, "profile", "--corpus", f"code={corpus}", "--model", tiny_dir, "--out", folder,
                          "--top", 2, "--max-tokens", 40, "--json")
    assert code == 0
    after_run = json.loads(stdout)
    view = profile_view(folder)
    assert {k: v for k, v in after_run.items() if k != "run_stats"} == view.to_dict()
    assert set(after_run["run_stats"]) >= {"computed", "resumed"}
    profile = pq.read_table(folder / "profile.parquet").to_pydict()
    var = np.array(profile["abs_mean_var"])
    assert view.corpora[0]["most_sensitive_layers"] == most_sensitive_layers(var, 2) == \
        [int(i) for i in np.argsort(-var, kind="stable")[:2]]
    code, stdout, _ = run(capsys, "profile", "--summary", folder)
    assert code == 0
    line = next(line for line in stdout.splitlines() if line.startswith("│ code"))  # the first table's row
    row = [c.strip() for c in line.strip("│").split("│")]
    assert row[:4] == ["code", str(view.corpora[0]["samples"]), str(view.corpora[0]["tokens"]), "0"]
    assert row[4] == ", ".join(f"L{layer}" for layer in view.corpora[0]["most_sensitive_layers"])
