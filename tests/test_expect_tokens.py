"""`--expect-tokens`: prompt text resolved to key positions per tokenizer (BOS, split words), one-line errors."""

from __future__ import annotations

import json

import pytest

import lmxray
from lmxray.errors import LmxrayError
from lmxray.models.expect_tokens import parse_items, resolve_items, token_spans
from lmxray.models.loader import from_hf
from cli_helpers import assert_user_error, run
from tiny_models import BosTokenizer, tiny_model


def test_parse_items():
    assert parse_items(" <first>, Paris#2 ,is, a\\,b") == [("<first>", None), ("Paris", 2), ("is", None), ("a,b", None)]
    for bad, word in (("", "empty"), ("a,,b", "empty item"), ("a#0", "count from 1")):
        with pytest.raises(LmxrayError, match=word):
            parse_items(bad)


def test_resolve_on_hand_spans_with_bos_and_a_split_word():
    prompt = "Paris is big. Paris is old"
    # [BOS] Par is ' is' ' big' . ' Paris' ' is' ' old': the first "Paris" split in two
    spans = [None, (0, 3), (3, 5), (5, 8), (8, 12), (12, 13), (13, 19), (19, 22), (22, 26)]
    assert resolve_items([("Paris", None)], prompt, spans, 8) == [1, 2, 6]  # "is" inside "Paris" is no match
    assert resolve_items([("is", None)], prompt, spans, 8) == [3, 7]
    assert resolve_items([("<first>", None), ("Paris", 2)], prompt, spans, 8) == [0, 6]
    assert resolve_items([("is", None)], prompt, spans, 4) == [3]  # occurrences after the position are dropped
    for items, word in (([("Rome", None)], "not in the prompt"), ([("is", 3)], "occurs 2 time"),
                        ([("old", None)], "after the prediction position")):
        with pytest.raises(LmxrayError, match=word):
            resolve_items(items, prompt, spans, 7)


def test_spans_without_offsets_walk_the_token_texts():
    model = from_hf(tiny_model("llama"), BosTokenizer(), "tiny-bos")
    ids = model.encode("ab cd")
    assert token_spans(model.tokenizer, "ab cd", ids, model.token_texts(ids)) == \
        [None, (0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    from lmxray.models.expect_tokens import expect_from_tokens

    assert expect_from_tokens(model, "ab cd", "<first>, cd", -1) == {5: [0, 4, 5]}  # BOS is position 0


def test_trace_cli_resolves_and_records_them(capsys, tiny_dir, tmp_path):
    out = tmp_path / "t.jsonl"
    code, stdout, _ = run(capsys, "trace", "hello world", "--model", tiny_dir, "--expect-tokens", "hello, <first>",
                          "--expect", '{"-1": [7]}', "--json", "--out", out)
    assert code == 0
    data = json.loads(stdout)
    assert data["expected_attention"] == {"10": [0, 1, 2, 3, 4, 7]}  # char-level: h e l l o, plus --expect's 7
    assert lmxray.read_trace(out).expected_attention == {10: [0, 1, 2, 3, 4, 7]}
    status = {r["position"]: r["status"] for r in data["convergence"]}
    assert status[4] == "expected" and status[5] == "unexpected"


def test_bad_expect_tokens_are_one_line_errors(capsys, tiny_dir, tmp_path):
    out = tmp_path / "bad.jsonl"
    base = ["trace", "hello world", "--model", tiny_dir, "--out", out, "--expect-tokens"]
    assert_user_error(capsys, base + ["moon"], "'moon' is not in the prompt", out_file=out)
    assert_user_error(capsys, base + ["hello#2"], "occurs 1 time", out_file=out)
    assert_user_error(capsys, base + ["world", "--position", "3"], "after the prediction position", out_file=out)
    assert_user_error(capsys, base + ["a,,b"], "empty item", out_file=out)
    html = tmp_path / "r.html"
    assert_user_error(capsys, ["report", "hello", "--model", tiny_dir, "--out", html, "--expect-tokens", "moon"],
                      "not in the prompt", out_file=html)
    trace = tmp_path / "t.jsonl"
    assert run(capsys, "trace", "hello", "--model", tiny_dir, "--out", trace)[0] == 0
    assert_user_error(capsys, ["report", trace, "--expect-tokens", "hello", "--out", html], "--expect-tokens",
                      out_file=html)


@pytest.mark.builtin
def test_readme_expectations_on_smollm2(capsys, tmp_path):
    """SmolLM2 adds no BOS: '<first>, The, capital, of' is positions 0-2, and ' Myanmar' stays unexpected."""
    code, stdout, _ = run(capsys, "trace", "The capital of Myanmar is", "--expect-tokens", "<first>, The, capital, of",
                          "--json")
    assert code == 0
    data = json.loads(stdout)
    assert data["expected_attention"] == {"4": [0, 1, 2]}
    status = {r["token"]: r["status"] for r in data["convergence"]}
    assert status[" of"] == "expected" and status[" Myanmar"] == "unexpected"
    code, stdout, _ = run(capsys, "trace", "The capital of France is Paris. Paris is a", "--expect-tokens",
                          "<first>, Paris, is", "--json")
    assert json.loads(stdout)["expected_attention"] == {"9": [0, 4, 5, 7, 8]}
