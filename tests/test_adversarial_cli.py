"""Bad command lines an adversarial user tried: each is one error line with exit code 2, never an internal error."""

from __future__ import annotations

import os
import stat

import pytest

from cli_helpers import assert_user_error, run

BIG = str(10**30)


@pytest.fixture(scope="module")
def trace_file(tiny_dir, tmp_path_factory):
    from lmxray.cli import main

    path = tmp_path_factory.mktemp("trace") / "t.jsonl"
    assert main(["trace", "hello world", "--model", str(tiny_dir), "--out", str(path), "--json"]) == 0
    return path


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.jsonl"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("command", ["lens", "report"])
def test_an_empty_prompt_is_named_as_such_not_as_a_folder(capsys, tiny_dir, tmp_path, command):
    out = tmp_path / "r.html"
    extra = ["--out", out] if command == "report" else []
    assert_user_error(capsys, [command, "", "--model", tiny_dir, *extra], "the prompt is empty", out_file=out)


@pytest.mark.parametrize("device", ["mps", "meta", "cuda:x", "cpu:0", "xla"])
def test_devices_other_than_cpu_and_cuda_are_refused(capsys, tiny_dir, device):
    assert_user_error(capsys, ["trace", "hi", "--model", tiny_dir, "--device", device], f"unknown device '{device}'")


@pytest.mark.parametrize("args, words", [
    (["trace", "hi", "--init", "random", "--seed", BIG], ["--seed", "out of range"]),
    (["trace", "hi", "--seed", "-1"], ["--seed -1", "out of range"]),
    (["logits", "hi", "--temperature", "1", "--seed", BIG], ["--seed", "out of range"]),
    (["heads", "--seed", str(2**63 - 1)], ["twins", "out of range"]),
    (["heads", "--baseline-seeds", BIG], ["--baseline-seeds", "more twins"]),
    (["report", "hi", "--head-scores", "--seed", str(2**63 - 2)], ["twins"]),
])
def test_seeds_torch_cannot_take_are_refused(capsys, tiny_dir, tmp_path, args, words):
    out = tmp_path / "report.html"
    extra = ["--out", out] if args[0] == "report" else []
    assert_user_error(capsys, [*args, "--model", tiny_dir, *extra], *words)


def test_devices_and_sockets_are_never_read_as_inputs(capsys, tiny_dir, trace_file, tmp_path):
    for args in (["compare", trace_file, "/dev/zero"], ["plot", "/dev/zero", "--out", tmp_path / "p.png"],
                 ["lens", "/dev/null", "--model", tiny_dir], ["report", "/dev/null", "--out", tmp_path / "r.html"]):
        assert_user_error(capsys, args, "character device", "not a trace file")
    assert_user_error(capsys, ["sweep", "/dev/zero", "--model", tiny_dir, "--out", tmp_path / "run"],
                      "character device", "not a text file")
    assert_user_error(capsys, ["profile", "--corpus", "z=/dev/zero", "--model", tiny_dir, "--out", tmp_path / "run"],
                      "character device")
    assert_user_error(capsys, ["trace", "hi", "--model", "/dev/zero"], "character device", "not a model file")
    assert not (tmp_path / "run").exists() and sorted(os.listdir(tmp_path)) == []


def test_a_device_named_like_a_trace_is_refused(capsys, tmp_path):
    node = tmp_path / "zero.jsonl"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("making a device node needs root (CAP_MKNOD)")
    assert_user_error(capsys, ["lens", node], "character device")


def test_a_fifo_model_is_named(capsys, fifo):
    assert_user_error(capsys, ["trace", "hi", "--model", fifo], "fifo", "not a model file")


def test_a_pipe_is_read_as_a_trace(capsys, trace_file, fifo):
    """`lmxray lens <(cat t.jsonl)`: the shell hands over a pipe, which is read like the file."""
    pid = os.fork()
    if pid == 0:  # the writer end, as the shell's process substitution would be
        with open(fifo, "wb") as w:
            w.write(trace_file.read_bytes())
        os._exit(0)
    code, stdout, err = run(capsys, "lens", fifo, "--json")
    os.waitpid(pid, 0)
    assert code == 0, err
    assert '"first_top1"' in stdout and '"rows"' in stdout


@pytest.mark.parametrize("args, words", [
    (["--position", "50"], ["--position", "trace file keeps"]),
    (["--top-k", "9"], ["--top-k", "trace file keeps"]),
])
def test_report_of_a_trace_file_refuses_options_it_would_ignore(capsys, trace_file, tmp_path, args, words):
    out = tmp_path / "r.html"
    assert_user_error(capsys, ["report", trace_file, "--out", out, *args], *words, out_file=out)


def test_lens_refuses_a_top_k_below_one_even_for_a_file(capsys, trace_file):
    assert_user_error(capsys, ["lens", trace_file, "--top-k", "0"], "--top-k must be at least 1")


@pytest.mark.parametrize("vmax", ["inf", "1e309", "-inf", "nan"])
def test_vmax_must_be_finite(capsys, trace_file, tmp_path, vmax):
    out = tmp_path / "p.png"
    assert_user_error(capsys, ["plot", trace_file, "--maps", "--out", out, "--vmax", vmax], "--vmax", out_file=out)


def test_a_tiny_temperature_samples_the_top_token(capsys, tiny_dir):
    code, stdout, err = run(capsys, "logits", "hello", "--model", tiny_dir, "--steps", 2, "--temperature", "1e-300",
                            "--json")
    assert code == 0, err
    import json

    steps = json.loads(stdout)["steps"]
    assert all(s["chosen_id"] == s["candidates"][0]["token_id"] for s in steps), "T -> 0 must be greedy"


@pytest.mark.parametrize("repeats", ["100000000", BIG])
def test_heads_refuses_a_probe_set_that_cannot_fit_before_building_it(capsys, tiny_dir, repeats):
    assert_user_error(capsys, ["heads", "--model", tiny_dir, "--repeats", repeats, "--baseline", "none"],
                      f"--repeats {repeats}", "GiB")


def test_a_huge_flow_top_k_shows_every_source(capsys, tiny_dir):
    code, stdout, err = run(capsys, "flow", "hi", "--model", tiny_dir, "--top-k", BIG)
    assert code == 0 and "sources of the residual" in stdout, err
