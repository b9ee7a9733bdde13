"""`compare`: per-layer JS and first-position share checked against a direct computation; the length warning."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import lmxray
from lmxray.analysis.convergence import compare, compare_layers, length_warning, summarize
from lmxray.trace.types import ModelInfo, TokenScore, Trace
from cli_helpers import assert_user_error, run

TOL = 1e-9


def random_trace(n_tokens: int, seed: int, layers=(0, 1, 2)) -> Trace:
    """A trace whose head-summed rows (2 heads, so each row sums to 2) are random causal distributions."""
    rng = np.random.default_rng(seed)
    info = ModelInfo("hand", "in-memory", None, "llama", 3, 2, 2, 4, 10, "float32")
    att = np.zeros((len(layers), n_tokens, n_tokens))
    for q in range(n_tokens):
        w = rng.random((len(layers), 2, q + 1)) ** 3
        att[:, q, : q + 1] = (w / w.sum(-1, keepdims=True)).sum(1)
    return Trace(model=info, prompt="x" * n_tokens, token_ids=list(range(n_tokens)),
                 tokens=[chr(97 + i) for i in range(n_tokens)], position=n_tokens - 1,
                 top_k=[TokenScore(1, "z", 0.5)], capture={"threshold": 0.01}, layers=list(layers), attention=att)


def direct_js(p: list[float], q: list[float]) -> float:
    """JS in bits by the textbook formula, one key at a time."""
    total = 0.0
    for x, y in zip(p, q):
        m = (x + y) / 2
        total += (x * math.log2(x / m) if x > 0 else 0.0) / 2 + (y * math.log2(y / m) if y > 0 else 0.0) / 2
    return total


@pytest.mark.parametrize("align", ["start", "end"])
def test_per_layer_js_and_first_share_match_a_direct_computation(align):
    a, b = random_trace(6, 0), random_trace(4, 1, layers=(1, 2))
    rows = compare_layers(a, b, align)
    assert [r.layer for r in rows] == [1, 2], "only layers captured in both traces are compared"
    for r in rows:
        pa = list(a.attention[a.layers.index(r.layer), 5] / 2)
        pb = list(b.attention[b.layers.index(r.layer), 3, :4] / 2)
        pb = pb + [0.0, 0.0] if align == "start" else [0.0, 0.0] + pb
        expect = direct_js(pa, pb)
        assert abs(r.js_bits - expect) < TOL, f"layer {r.layer}: JS {r.js_bits} vs direct {expect}"
        assert abs(r.first_share_a - pa[0]) < TOL and abs(r.first_share_b - b.attention[b.layers.index(r.layer), 3, 0] / 2) < TOL
        h = -sum(x * math.log2(x) for x in pa if x > 0) / math.log2(6)
        assert abs(r.entropy_norm_a - h) < TOL


def test_equal_traces_have_zero_js_and_no_warning():
    a = random_trace(5, 3)
    assert all(r.js_bits < 1e-12 for r in compare_layers(a, a)) and length_warning(a, a) is None
    assert "5 tokens" in length_warning(random_trace(5, 3), random_trace(7, 3))


def test_length_normalised_metrics():
    a = random_trace(8, 2)
    s = summarize(a)
    mass = a.attention[:, 7].sum(0)
    p = mass / mass.sum()
    assert abs(s.entropy_norm - (-(p * np.log2(p)).sum() / math.log2(8))) < 1e-6
    assert abs(s.sink_share - p[0]) < 1e-6 and s.active_share == s.active_positions / 8
    labels = [label for label, _, _ in compare(a, a)]
    assert "entropy / log2(key positions)" in labels and "first-position share of the mass" in labels


def test_compare_cli_warns_once_and_its_json_matches_the_files(capsys, tiny_dir, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert run(capsys, "trace", "abc abc", "--model", tiny_dir, "--threshold", "0", "--out", a)[0] == 0
    assert run(capsys, "trace", "xyz", "--model", tiny_dir, "--threshold", "0", "--out", b)[0] == 0
    code, stdout, stderr = run(capsys, "compare", a, b, "--json", "--align", "end")
    assert code == 0
    warning = stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("warning: A's prediction sees 7 tokens and B's 3")
    data = json.loads(stdout)
    ta, tb = lmxray.read_trace(a), lmxray.read_trace(b)
    assert data["align"] == "end" and len(data["layers"]) == ta.model.n_layers
    for row in data["layers"]:
        ra, rb = ta.attention[row["layer"], 6].astype(float), tb.attention[row["layer"], 2, :3].astype(float)
        pa, pb = ra / ra.sum(), rb / rb.sum()
        assert abs(row["js_bits"] - direct_js(list(pa), [0.0] * 4 + list(pb))) < 1e-9
        assert abs(row["first_share_a"] - pa[0]) < 1e-9 and abs(row["first_share_b"] - pb[0]) < 1e-9
    code, stdout, stderr = run(capsys, "compare", a, a)
    assert code == 0 and stderr == "" and "per layer at the prediction position" in stdout
    assert "entropy / log2(key positions)" in stdout
    assert_user_error(capsys, ["compare", a, b, "--align", "middle"], "--align", "start or end")


def test_compare_says_when_the_models_differ(capsys, tiny_dir, tmp_path):
    """A trace of a model and one of its random-init twin: the table notes it, the JSON carries it."""
    from cli_helpers import run

    real, twin = tmp_path / "real.jsonl", tmp_path / "twin.jsonl"
    assert run(capsys, "trace", "hello world", "--model", tiny_dir, "--out", real)[0] == 0
    assert run(capsys, "trace", "hello world", "--model", f"random:{tiny_dir}", "--out", twin)[0] == 0
    code, stdout, _ = run(capsys, "compare", real, twin)
    assert code == 0 and "note: different models" in stdout and "random-init twin" in stdout
    code, stdout, err = run(capsys, "compare", real, twin, "--json")
    assert code == 0 and "random-init twin" in json.loads(stdout)["models"] and "different models" in err
    code, stdout, _ = run(capsys, "compare", real, real, "--json")
    assert json.loads(stdout)["models"] is None
