"""Contrastive attribution (--token A --vs B) against the model's true logits, the sink apart, the stacked-bar figure."""

from __future__ import annotations

import json

import numpy as np
import pytest

import lmxray
from lmxray.errors import LmxrayError
from lmxray.flow import flow, read_flow
from lmxray.models.loader import from_hf
from cli_helpers import assert_user_error, run
from tiny_models import BosTokenizer, save_tiny, tiny_model

REL_TOL = 1e-5  # |sum of contributions - (logit A - logit B)| / max(|logit A|, |logit B|), fp32
PROMPT = "hello world, this is a flow"


def contrast_drift(result, untraced) -> float:
    a, b = result.versus
    la, lb = float(untraced[a]), float(untraced[b])
    return abs(float(result.contrast.contributions.sum()) - (la - lb)) / max(abs(la), abs(lb))


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma2", "gpt_neox"])
def test_contrast_sums_to_the_true_logit_difference(family):
    model = from_hf(tiny_model(family), BosTokenizer(), family)
    result = flow(model, PROMPT, position=-3, tokens=("x",), versus="!", block_rows=40)
    untraced = model.logits(PROMPT)[result.position].double()
    ids = [model.tokenizer(t, add_special_tokens=False)["input_ids"][0] for t in ("x", "!")]
    assert result.versus == tuple(ids)
    drift = contrast_drift(result, untraced)
    assert drift <= REL_TOL, f"{family}: contrast drifts {drift:.2e} from logit x - logit ! (tol {REL_TOL})"
    c = result.contrast
    assert np.array_equal(c.contributions, c.a.contributions.astype(float) - c.b.contributions.astype(float))


def test_contrast_defaults_to_the_prediction_and_refuses_one_token():
    model = from_hf(tiny_model("llama"), BosTokenizer(), "llama")
    result = flow(model, PROMPT, versus="!")
    assert result.versus[0] == result.logits[0].token_id
    predicted = model.token_text(result.logits[0].token_id)
    with pytest.raises(LmxrayError, match="predicted token itself"):
        flow(model, PROMPT, versus=predicted)
    with pytest.raises(LmxrayError, match="same token"):
        flow(model, PROMPT, tokens=("x",), versus="x")
    with pytest.raises(LmxrayError, match="--vs 'ab' is not a single token"):
        flow(model, PROMPT, versus="ab")


@pytest.fixture(scope="module")
def flow_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("contrast")
    model_dir = save_tiny("gpt2", folder / "model")
    return model_dir, folder


def test_cli_contrast_sink_apart_file_plot_and_report(capsys, flow_file):
    model_dir, folder = flow_file
    out = folder / "f.jsonl"
    code, stdout, _ = run(capsys, "flow", "hello world", "--model", model_dir, "--token", "x", "--vs", "!",
                          "--out", out)
    assert code == 0
    for text in ("'x' - '!'", "reported apart", "(sink)", "content sources", "logit (difference for A - B)"):
        assert text in stdout, f"{text!r} missing from the flow output"
    code, stdout, _ = run(capsys, "flow", "hello world", "--model", model_dir, "--token", "x", "--vs", "!", "--json")
    data = json.loads(stdout)
    c, untraced = data["contrast"], lmxray.load(str(model_dir)).logits("hello world")[-1].double()
    truth = float(untraced[c["a"]["token_id"]] - untraced[c["b"]["token_id"]])
    assert abs(sum(c["contributions"]) - truth) <= REL_TOL * max(abs(float(untraced[c["a"]["token_id"]])), 1e-3)
    assert abs(c["sink"] + c["content"] + c["bias"] - c["sum"]) <= 1e-9
    assert c["sink"] == c["contributions"][0] and data["sink"]["source"] == data["sources"][0]

    back = read_flow(out)
    assert back.versus == (c["a"]["token_id"], c["b"]["token_id"])
    png = folder / "bars.png"
    code, stdout, _ = run(capsys, "plot", out, "--out", png, "--json")
    assert code == 0 and json.loads(stdout)["figure"] == "flow bars" and png.stat().st_size > 10_000
    code, stdout, _ = run(capsys, "plot", out, "--graph", "--out", folder / "graph.png", "--json")
    assert code == 0 and json.loads(stdout)["figure"] == "flow figure"
    assert_user_error(capsys, ["plot", out, "--layers", "0", "--out", folder / "x.png"], "--layers",
                      out_file=folder / "x.png")
    html = folder / "r.html"
    code, stdout, _ = run(capsys, "report", out, "--out", html, "--json")
    assert code == 0 and json.loads(stdout)["flow"] is True
    page = html.read_text()
    assert "Information flow" in page and "direct logit attribution, in parts" in page and "://" not in page
    assert_user_error(capsys, ["flow", "hello", "--model", model_dir, "--vs", "ab", "--out", folder / "bad.jsonl"],
                      "--vs 'ab' is not a single token", out_file=folder / "bad.jsonl")


def test_bar_heights_are_the_flow_shares(flow_file):
    from lmxray.render.flow_bars import flow_bars_figure

    model_dir, _ = flow_file
    result = flow(lmxray.load(str(model_dir)), "hello world")
    fig = flow_bars_figure(result)
    top = fig.axes[0]
    n_layers, p = result.total.shape[0], result.position
    norms = result.total[:, p].astype(np.float64)  # [layer, source]
    shares = norms / norms.sum(-1, keepdims=True)
    heights = np.array([bar.get_height() for bar in top.patches]).reshape(-1, n_layers)  # [segment, layer]
    assert np.allclose(heights.sum(0), 1.0, atol=1e-9), "each layer's stack should fill the share axis"
    assert np.allclose(heights[0], shares[:, 0], atol=1e-9), "the bottom segment is the first source (sink)"
    assert np.allclose(heights[-1], shares[:, -1], atol=1e-9), "the top segment is the bias"


@pytest.mark.builtin
def test_builtin_paris_vs_the():
    model = lmxray.load("smollm2")
    prompt = "The capital of France is"
    result = flow(model, prompt, tokens=(" Paris",), versus=" the")
    untraced = model.logits(prompt)[-1].double()
    drift = contrast_drift(result, untraced)
    assert drift <= REL_TOL, f"smollm2: contrast drifts {drift:.2e}"
    c = result.contrast.contributions
    assert result.sources[0] == "The" and abs(result.logits[0].contributions[0]) > 0.5 * result.logits[0].logit
    assert abs(c[0]) < 0.5 * abs(result.contrast.difference), "the sink no longer dominates the contrast"
