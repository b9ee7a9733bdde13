"""The CLI as a user sees it: output, files written, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest
import torch

import lmxray
from lmxray.cli import main
from cli_helpers import assert_user_error, run
from tiny_models import tiny_tokenizer


def test_trace_writes_file_and_prints_tables(capsys, tiny_dir, tmp_path):
    out = tmp_path / "t.jsonl"
    code, stdout, _ = run(capsys, "trace", "hello world", "--model", tiny_dir, "--expect", '{"-1": [0, 2]}',
                          "--out", out, "--per-head")
    assert code == 0
    for text in ("top-k candidates", "convergence at position 10", "expected", "unexpected", "first-position sink mass"):
        assert text in stdout, f"{text!r} missing from the trace output"
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["record"] == "meta" and records[0]["prompt"] == "hello world"
    assert any(r["record"] == "edge" and "head_id" in r for r in records)


def test_trace_json_matches_library(capsys, tiny_dir):
    import lmxray
    from lmxray.analysis.convergence import summarize

    code, stdout, _ = run(capsys, "trace", "hello world", "--model", tiny_dir, "--json", "--top-k", "3")
    assert code == 0
    data = json.loads(stdout)
    ref = lmxray.load(str(tiny_dir)).trace("hello world", plan=lmxray.CapturePlan(top_k=3))
    assert [c["token_id"] for c in data["top_k"]] == [s.token_id for s in ref.top_k]
    assert abs(data["confidence"] - ref.confidence) <= 1e-6
    mass = sum(row["mass"] for row in data["convergence"])
    n_layers, n_heads = ref.model.n_layers, ref.model.n_heads
    assert abs(mass - n_layers * n_heads) <= 1e-3, f"total mass {mass} != layers x heads {n_layers * n_heads}"
    assert data["summary"]["entropy_bits"] == pytest.approx(summarize(ref).entropy_bits, abs=1e-9)


def test_trace_keeps_chosen_layers_and_heads(capsys, tiny_dir, tmp_path):
    out = tmp_path / "t.jsonl"
    code, _, _ = run(capsys, "trace", "hello world", "--model", tiny_dir, "--layers", "0,-1", "--per-head",
                     "--heads", "1", "--out", out)
    assert code == 0
    back = lmxray.read_trace(out)
    n_layers = back.model.n_layers
    assert back.layers == [0, n_layers - 1] and back.heads == [1]
    assert back.attention.shape[0] == 2 and back.attention_heads.shape[:2] == (2, 1)


def test_trace_layer_and_head_options_refuse_bad_values(capsys, tiny_dir, tmp_path):
    out = tmp_path / "t.jsonl"
    base = ["trace", "hello", "--model", tiny_dir, "--out", out]
    assert_user_error(capsys, base + ["--heads", "1"], "--per-head", out_file=out)
    assert_user_error(capsys, base + ["--layers", "7"], "layer 7 is out of range", "layers", out_file=out)
    assert_user_error(capsys, base + ["--layers", "1,,2"], "empty item", out_file=out)


def test_trace_too_big_for_memory_is_refused_before_the_forward(capsys, tiny_dir, tmp_path, monkeypatch):
    from lmxray.capture import budget

    monkeypatch.setattr(budget, "free_bytes", lambda device: (2**10, None))  # 1 KiB free
    out = tmp_path / "t.jsonl"
    assert_user_error(capsys, ["trace", "hello world", "--model", tiny_dir, "--per-head", "--out", out],
                      "needs about", "only 0.0 GiB is free", out_file=out)


def test_compare_prints_side_by_side(capsys, tiny_dir, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert run(capsys, "trace", "abc abc", "--model", tiny_dir, "--expect", '{"-1": [0]}', "--out", a)[0] == 0
    assert run(capsys, "trace", "xyz", "--model", tiny_dir, "--expect", '{"-1": [1]}', "--out", b)[0] == 0
    code, stdout, _ = run(capsys, "compare", a, b)
    assert code == 0
    for text in ("first-position sink mass", "active positions", "unexpected positions > 0.1",
                 "attention entropy", "confidence"):
        assert text in stdout
    code, stdout, _ = run(capsys, "compare", a, b, "--json")
    metrics = {m["metric"]: (m["a"], m["b"]) for m in json.loads(stdout)["metrics"]}
    assert metrics["active positions"][0] <= 8 and metrics["active positions"][1] <= 4


def test_models_lists_aliases_and_architectures(capsys):
    code, stdout, _ = run(capsys, "models", "--json")
    assert code == 0
    data = json.loads(stdout)
    assert "smollm2" in [b["alias"] for b in data["builtin"]]
    types = {t for a in data["architectures"] for t in a["model_types"]}
    assert {"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "gpt2", "gpt_neox", "phi3"} <= types


# -- bad input: one line, exit 2, no traceback, no file --------------------------------


def test_missing_model_path(capsys, tmp_path):
    out = tmp_path / "x.jsonl"
    assert_user_error(capsys, ["trace", "hi", "--model", tmp_path / "nope.gguf", "--out", out], "not found", out_file=out)


def test_file_that_is_not_gguf(capsys, tmp_path):
    fake = tmp_path / "fake.gguf"
    fake.write_text("this is not a model\n" * 10)
    out = tmp_path / "x.jsonl"
    assert_user_error(capsys, ["trace", "hi", "--model", fake, "--out", out], "not a GGUF", out_file=out)


def test_truncated_gguf(capsys, tmp_path):
    from gguf_fixture import write_tiny_llama_gguf

    path = tmp_path / "tiny.gguf"
    write_tiny_llama_gguf(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    out = tmp_path / "x.jsonl"
    assert_user_error(capsys, ["trace", "hi", "--model", path, "--out", out], "truncated", out_file=out)


def test_unsupported_architecture(capsys, tmp_path):
    import transformers

    config = transformers.MambaConfig(vocab_size=99, hidden_size=16, state_size=4, num_hidden_layers=1)
    transformers.MambaForCausalLM(config).save_pretrained(tmp_path / "mamba")
    tiny_tokenizer().save_pretrained(tmp_path / "mamba")
    assert_user_error(capsys, ["trace", "hi", "--model", tmp_path / "mamba"],
                      "cannot trace model type 'mamba': it has no attention", "models --support")


def test_hub_id_not_cached(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert_user_error(capsys, ["trace", "hi", "--model", "no-such-org/no-such-model"], "cache")


def test_empty_prompt(capsys, tiny_dir, tmp_path):
    out = tmp_path / "x.jsonl"
    assert_user_error(capsys, ["trace", "", "--model", tiny_dir, "--out", out], "empty", out_file=out)


def test_prompt_longer_than_context(capsys, tiny_dir, tmp_path):
    out = tmp_path / "x.jsonl"
    assert_user_error(capsys, ["trace", "x" * 100, "--model", tiny_dir, "--out", out], "longer than", out_file=out)


@pytest.mark.parametrize("expect, word", [("{-1: [0]}", "not valid JSON"), ("[0, 1]", "JSON object"),
                                          ('{"-1": [0, 40]}', "out of range"), ('{"30": [0]}', "out of range")])
def test_bad_expect(capsys, tiny_dir, tmp_path, expect, word):
    out = tmp_path / "x.jsonl"
    assert_user_error(capsys, ["trace", "hello", "--model", tiny_dir, "--expect", expect, "--out", out], word,
                      out_file=out)


def test_position_out_of_range(capsys, tiny_dir):
    assert_user_error(capsys, ["trace", "hello", "--model", tiny_dir, "--position", "9"], "out of range")


def test_invalid_trace_given_to_compare(capsys, tmp_path):
    good = tmp_path / "good.jsonl"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"record": "meta", "schema": "lmxray.trace/1"}\n{"record": "edge", "weight": "heavy"}\n')
    good.write_text(bad.read_text())
    assert_user_error(capsys, ["compare", good, bad], f"{good}:")
    assert_user_error(capsys, ["compare", tmp_path / "missing.jsonl", bad], "missing.jsonl")


def test_output_path_cannot_be_written(capsys, tiny_dir, tmp_path):
    out = tmp_path / "no-such-dir" / "x.jsonl"
    assert_user_error(capsys, ["trace", "hello", "--model", tiny_dir, "--out", out], "cannot write")
    assert not out.parent.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_but_absent(capsys, tiny_dir):
    assert_user_error(capsys, ["trace", "hello", "--model", tiny_dir, "--device", "cuda"], "CUDA")


def test_debug_shows_the_traceback(tiny_dir):
    from lmxray.errors import LmxrayError

    with pytest.raises(LmxrayError):
        main(["trace", "", "--model", str(tiny_dir), "--debug"])


def test_tiny_gguf_traces_end_to_end(capsys, tmp_path, monkeypatch):
    from gguf_fixture import write_tiny_llama_gguf

    monkeypatch.setenv("LMXRAY_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "tiny.gguf"
    write_tiny_llama_gguf(path)
    code, stdout, _ = run(capsys, "trace", "the capital", "--model", path, "--json")
    assert code == 0
    data = json.loads(stdout)
    assert data["model"]["source"] == "gguf" and len(data["model"]["sha256"]) == 64
    assert sum(r["mass"] for r in data["convergence"]) == pytest.approx(
        data["model"]["n_layers"] * data["model"]["n_heads"], abs=1e-3)


def test_corrupt_safetensors(capsys, tiny_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    assert_user_error(capsys, ["trace", "hello", "--model", broken], "cannot load")


@pytest.mark.parametrize("args, words", [
    (["trace"], ["missing argument", "lmxray trace --help"]),
    (["compare", "a.jsonl"], ["missing argument 'b'"]),
    (["trace", "hi", "--top-k", "abc"], ["--top-k", "integer"]),
    (["trace", "hi", "--no-such-option"], ["no such option"]),
    (["trace", "a", "b"], ["unexpected extra argument"]),
    (["no-such-command"], ["no such command"]),
])
def test_usage_errors_are_one_line(capsys, args, words):
    assert_user_error(capsys, args, *words)


def test_bare_command_prints_help(capsys):
    code, stdout, err = run(capsys)
    assert code == 0 and "Usage" in stdout and not err


def test_top_k_larger_than_vocabulary(capsys, tiny_dir, tmp_path):
    out = tmp_path / "x.jsonl"
    assert_user_error(capsys, ["trace", "hello", "--model", tiny_dir, "--top-k", 100000, "--out", out],
                      "--top-k 100000", "vocabulary", out_file=out)
    assert_user_error(capsys, ["lens", "hello", "--model", tiny_dir, "--top-k", 100000], "vocabulary")


@pytest.mark.parametrize("expect", ['{"-1": [1.5]}', '{"-1": [true]}', '{"-1": "12"}', '{"-1": [1e400]}',
                                    '{"-1": [1e30]}', '{"-1": [2.0]}'])
def test_expect_positions_must_be_integers(capsys, tiny_dir, tmp_path, expect):
    out = tmp_path / "x.jsonl"
    assert_user_error(capsys, ["trace", "hello", "--model", tiny_dir, "--expect", expect, "--out", out],
                      "not position -> list of positions", out_file=out)


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self"), reason="needs Linux /proc")
@pytest.mark.parametrize("command", ["trace", "logits", "flow"])
def test_output_in_a_directory_that_takes_no_files(capsys, tiny_dir, command):
    assert_user_error(capsys, [command, "hello", "--model", tiny_dir, "--out", "/proc/lmxray-x.json"], "cannot write")


@pytest.mark.parametrize("args, name", [(["trace", "hello"], "t.png"), (["flow", "hello"], "t.html"),
                                        (["logits", "hello"], "l.jsonl")])
def test_output_named_like_another_kind_of_file(capsys, tiny_dir, tmp_path, args, name):
    out = tmp_path / name
    assert_user_error(capsys, [*args, "--model", tiny_dir, "--out", out], f"ends in {out.suffix}", out_file=out)


@pytest.mark.parametrize("args", [["--layers", "1,,2"], ["--heads", "1,"]])
def test_list_with_an_empty_item(capsys, tiny_dir, args):
    assert_user_error(capsys, ["heads", "--model", tiny_dir, "--baseline", "none", *args], "empty item")


def test_prompt_that_is_not_utf8(capsys, tiny_dir, tmp_path):
    out = tmp_path / "x.jsonl"
    bad = b"caf\xe9".decode("utf-8", "surrogateescape")  # how Python hands over undecodable argv bytes
    assert_user_error(capsys, ["trace", bad, "--model", tiny_dir, "--out", out], "not valid UTF-8", out_file=out)


def test_exit_code_of_a_command_reaches_the_shell(monkeypatch):
    """A command that ends with typer.Exit(n) exits n, not 0."""
    import typer

    import lmxray.cli

    scratch = typer.Typer()

    @scratch.command()
    def stop():
        raise typer.Exit(3)

    @scratch.command()
    def other():
        pass

    monkeypatch.setattr(lmxray.cli, "app", scratch)
    assert lmxray.cli.main(["stop"]) == 3
    assert lmxray.cli.main(["other"]) == 0
