"""lmxray flow as a user sees it: tables, JSON, the written file, one-line errors; and the built-in model end to end."""

from __future__ import annotations

import json

import pytest

import lmxray
from lmxray.flow import flow, read_flow
from cli_helpers import assert_user_error, run
from tiny_models import save_tiny

RESID_TOL = 1e-4  # relative error of the sum over sources (fp32)
LOGIT_TOL = 1e-4  # attribution sum vs the untraced logit


@pytest.fixture(scope="module")
def tiny_gpt2_dir(tmp_path_factory):
    return save_tiny("gpt2", tmp_path_factory.mktemp("tiny-gpt2"))


def test_flow_tables_and_file(capsys, tiny_gpt2_dir, tmp_path):
    out = tmp_path / "f.jsonl"
    code, stdout, _ = run(capsys, "flow", "hello world", "--model", tiny_gpt2_dir, "--group", "0-4,6-10", "--token", "x",
                          "--out", out)
    assert code == 0
    for text in ("sources of the residual at position 10", "direct logit attribution", "max relative error",
                 "'<bias>'", "3 sources + bias"):
        assert text in stdout, f"{text!r} missing from the flow output"
    back = read_flow(out)
    assert back.groups == [(0, 5), (5, 6), (6, 11)] and back.sources[-1] == "<bias>"
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["record"] == "meta" and any(r["record"] == "flow" and r["kind"] == "logit" for r in records)
    assert lmxray.read_trace(out).prompt == "hello world"


def test_flow_json_matches_untraced_logits(capsys, tiny_gpt2_dir):
    code, stdout, _ = run(capsys, "flow", "hello world", "--model", tiny_gpt2_dir, "--position", "5", "--json")
    assert code == 0
    data = json.loads(stdout)
    model = lmxray.load(str(tiny_gpt2_dir))
    logits = model.logits("hello world")[5]
    assert data["position"] == 5 and data["max_error"] <= RESID_TOL
    assert len(data["sources"]) == 7 and data["sources"][-1] == "<bias>"  # tokens 0..5, then the bias
    for a in data["attribution"]:
        assert abs(sum(a["contributions"]) - float(logits[a["token_id"]])) <= LOGIT_TOL
    for row in data["layers"]:
        assert abs(sum(row["total_share"]) - 1) <= 1e-6


def test_flow_bad_input(capsys, tiny_gpt2_dir, tmp_path):
    out = tmp_path / "bad.jsonl"
    base = ["flow", "hello", "--model", tiny_gpt2_dir, "--out", out]
    assert_user_error(capsys, base + ["--position", "9"], "position 9", "out of range", out_file=out)
    assert_user_error(capsys, base + ["--token", "ab"], "not a single token", "'a' + 'b'", out_file=out)
    assert_user_error(capsys, base + ["--group", ""], "--group", out_file=out)
    assert_user_error(capsys, base + ["--group", "0-1,,3"], "empty group", out_file=out)
    assert_user_error(capsys, base + ["--group", "3-1"], "empty", out_file=out)
    assert_user_error(capsys, base + ["--group", "0-2,2-3"], "overlap", out_file=out)
    assert_user_error(capsys, base + ["--group", "0-9"], "out of range", out_file=out)
    assert_user_error(capsys, ["flow", "hello", "--model", tiny_gpt2_dir, "--out", tmp_path / "no" / "x.jsonl"],
                      "does not exist", out_file=tmp_path / "no" / "x.jsonl")


@pytest.fixture(scope="module")
def smollm2():
    return lmxray.load("smollm2")


@pytest.mark.builtin
def test_builtin_france(smollm2):
    result = flow(smollm2, "The capital of France is", groups="words", tokens=(" city",))
    assert result.logits[0].text == " Paris" and result.model.n_layers == 30
    assert result.max_error <= RESID_TOL, f"smollm2: sum over sources drifts {result.max_error:.2e}"
    logits = smollm2.logits("The capital of France is")[-1]
    for a in result.logits:
        assert abs(a.total - float(logits[a.token_id])) <= LOGIT_TOL * 10, f"{a.text!r}: {a.total} vs {logits[a.token_id]}"
    assert result.sources == ["The", " capital", " of", " France", " is", "<bias>"]
    assert result.total.shape == (30, 5, 6)
