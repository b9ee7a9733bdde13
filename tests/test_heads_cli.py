"""`lmxray heads` as a user sees it: tables, JSON, files, one-line errors; and the built-in model's induction heads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import lmxray
from lmxray.analysis.heads import MIXED_THRESHOLD, PATTERNS, Z_SIGNIFICANT
from lmxray.probes.heads import NATURAL_PROMPTS, head_scores_vs_baseline, probe_set, random_twins
from cli_helpers import assert_user_error, run


def test_heads_table_figure_and_json(capsys, tiny_dir, tmp_path):
    fig, scores_file = tmp_path / "heads.svg", tmp_path / "heads.json"
    code, stdout, err = run(capsys, "heads", "--model", tiny_dir, "--baseline-seeds", 2, "--figure", fig,
                            "--out", scores_file)
    assert code == 0, err
    for text in ("top heads per pattern", "labels per layer", "induction", "position_skip", "random init (2 seeds)"):
        assert text in stdout, f"{text!r} missing from the heads output"
    svg = fig.read_text()
    assert svg.startswith("<?xml") and "previous token" in svg and "one colour scale 0-1" in svg
    data = json.loads(scores_file.read_text())
    assert len(data["heads"]) == 3 * 4 and set(data["top"]) == set(PATTERNS)
    assert data["baseline"] == "random init (2 seeds)" and data["mixed_threshold"] == MIXED_THRESHOLD
    code, stdout, _ = run(capsys, "heads", "--model", tiny_dir, "--baseline", "none", "--json",
                          "--patterns", "induction", "--layers", "-1", "--heads", "0,1", "--top", 2)
    printed = json.loads(stdout)
    assert code == 0 and list(printed["top"]) == ["induction"] and len(printed["top"]["induction"]) == 2
    assert {h["layer"] for h in printed["heads"]} == {2} and "z" not in printed["heads"][0]
    assert {h["head"] for h in printed["top"]["induction"]} <= {0, 1}


def test_checkpoint_baseline_and_evolution(capsys, tiny_dir):
    code, stdout, err = run(capsys, "heads", "--model", tiny_dir, "--baseline", tiny_dir, "--json",
                            "--checkpoints", f"{tiny_dir},{tiny_dir}")
    assert code == 0, err
    data = json.loads(stdout)
    assert data["baseline"] == str(tiny_dir) and len(data["checkpoints"]) == 2
    for entry in data["checkpoints"]:  # the same weights score the same as the model itself
        for pattern, got in entry["scores"].items():
            want = data["top"][pattern][0]
            assert (got["layer"], got["head"]) == (want["layer"], want["head"])
            assert abs(got["score"] - want["score"]) <= 1e-9, f"{pattern}: {got['score']} vs {want['score']}"
    code, stdout, _ = run(capsys, "heads", "--model", tiny_dir, "--baseline", "none", "--json",
                          "--checkpoints", tiny_dir, tiny_dir, tiny_dir)  # the issue's `--checkpoints A B C` form
    assert code == 0 and len(json.loads(stdout)["checkpoints"]) == 3
    code, stdout, _ = run(capsys, "heads", "--model", tiny_dir, "--baseline", "none", "--checkpoints", tiny_dir)
    assert code == 0 and "across checkpoints" in stdout
    stray = run(capsys, "heads", "--model", tiny_dir, "stray-argument")
    assert stray[0] == 2 and "unexpected argument" in stray[2]


@pytest.mark.parametrize("args, words", [
    (["--patterns", "copying"], ["unknown pattern 'copying'"]),
    (["--layers", "7"], ["layer 7 is out of range"]),
    (["--heads", "4"], ["head 4 is out of range"]),
    (["--baseline-seeds", "0"], ["--baseline-seeds"]),
    (["--top", "0"], ["--top"]),
    (["--patterns", "induction,,self"], ["empty item"]),
    (["--repeats", "0"], ["repeated block"]),
])
def test_heads_bad_input(capsys, tiny_dir, tmp_path, args, words):
    out_file, fig = tmp_path / "s.json", tmp_path / "f.png"
    code, _, err = run(capsys, "heads", "--model", tiny_dir, "--out", out_file, "--figure", fig, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(w in lines[0] for w in words), lines[0]
    assert "Traceback" not in err and not list(tmp_path.iterdir()), "a file was written despite the error"


def test_heads_figure_needs_png_or_svg(capsys, tiny_dir, tmp_path):
    code, _, err = run(capsys, "heads", "--model", tiny_dir, "--figure", tmp_path / "f.pdf")
    assert code == 2 and ".png or .svg" in err and not list(tmp_path.iterdir())


def test_heads_out_named_like_a_figure(capsys, tiny_dir, tmp_path):
    code, _, err = run(capsys, "heads", "--model", tiny_dir, "--out", tmp_path / "s.svg")
    assert code == 2 and ".json" in err and len(err.strip().splitlines()) == 1 and not list(tmp_path.iterdir())


# -- the built-in model ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def smollm2_scores():
    """The built-in model, two random-init twins, and the model's scores against them (loaded once)."""
    model = lmxray.load("smollm2")
    twins = list(random_twins("smollm2", [1, 2]))
    probes = probe_set(model, n_repeats=1, prompts=NATURAL_PROMPTS[:1])  # a lighter probe set keeps the test quick
    scores, twin_scores = head_scores_vs_baseline(model, twins, "random", probes)
    return model, twins, scores, twin_scores


@pytest.mark.builtin
def test_builtin_has_induction_heads_and_its_twin_has_none(smollm2_scores):
    _, _, scores, twin_scores = smollm2_scores
    found = scores.heads_with("induction", min_z=Z_SIGNIFICANT)
    assert (18, 6) in found and len(found) >= 3, f"induction heads found: {found}"
    assert all(layer >= 10 for layer, _ in found), f"induction heads in early layers: {found}"
    for twin in twin_scores:
        best = float(np.max(twin.scores["induction"]))
        assert not twin.heads_with("induction"), f"{twin.model}: induction heads at random init"
        assert best < 0.1, f"{twin.model}: best induction score {best:.3f} at random init"
    assert (scores.labels == "induction").sum() >= 3, "induction heads are not labelled as such"


@pytest.mark.builtin
def test_random_twins_have_fresh_weights_same_config_and_tokenizer(smollm2_scores):
    model, (twin_a, twin_b), _, _ = smollm2_scores
    text = "The capital of France is"
    for twin in (twin_a, twin_b):
        assert twin.hf.config.to_dict() | {"_name_or_path": None} == model.hf.config.to_dict() | {"_name_or_path": None}
        assert twin.encode(text) == model.encode(text)
    params_a, params_b = dict(twin_a.hf.named_parameters()), dict(twin_b.hf.named_parameters())
    for name, w in model.hf.named_parameters():
        if w.ndim == 2 and ("layers.0." in name or "layers.29." in name):  # first and last blocks' matrices
            a, b = params_a[name], params_b[name]
            assert not torch.equal(a, w) and not torch.equal(a, b), f"{name} is not freshly initialised"


def test_heads_probe_set_too_big_names_the_probe_options(capsys, tiny_dir, tmp_path, monkeypatch):
    from lmxray.capture import budget

    monkeypatch.setattr(budget, "free_bytes", lambda device: (2**10, None))  # 1 KiB free
    out = tmp_path / "s.json"
    assert_user_error(capsys, ["heads", "--model", tiny_dir, "--baseline", "none", "--out", out],
                      "needs about", "--repeats", out_file=out)
