"""Outputs only ever replace a regular file: devices, FIFOs, sockets and folders are refused untouched, symlinks
are written through."""

from __future__ import annotations

import json
import os
import socket
import stat

import pytest

from lmxray.atomic import atomic_output, atomic_write, output_target, replace_regular
from lmxray.errors import LmxrayError
from cli_helpers import assert_user_error, run

MISSING_MODEL = "/nonexistent/model"  # an output refused before any work never gets to load it


def node_id(path) -> tuple:
    st = os.lstat(path)
    return st.st_mode, st.st_ino, st.st_dev, st.st_rdev, st.st_size, st.st_mtime_ns


@pytest.fixture(scope="module")
def trace_file(tiny_dir, tmp_path_factory):
    from lmxray.cli import main

    path = tmp_path_factory.mktemp("trace") / "t.jsonl"
    assert main(["trace", "hello world", "--model", str(tiny_dir), "--per-head", "--out", str(path), "--json"]) == 0
    return path


# (command line with OUT where the output goes, suffix the output needs); the model is never loaded
COMMANDS = {
    "trace": (["trace", "hi", "--model", MISSING_MODEL, "--out", "OUT"], ".jsonl"),
    "flow": (["flow", "hi", "--model", MISSING_MODEL, "--out", "OUT"], ".jsonl"),
    "report": (["report", "hi", "--model", MISSING_MODEL, "--out", "OUT"], ".html"),
    "maps": (["maps", "hi", "--model", MISSING_MODEL, "--out", "OUT"], ".png"),
    "plot": (["plot", "TRACE", "--out", "OUT"], ".svg"),
    "plot-maps": (["plot", "TRACE", "--maps", "--out", "OUT"], ".png"),
    "heads-figure": (["heads", "--model", MISSING_MODEL, "--figure", "OUT"], ".png"),
    "heads-out": (["heads", "--model", MISSING_MODEL, "--out", "OUT"], ".json"),
    "logits": (["logits", "hi", "--model", MISSING_MODEL, "--out", "OUT"], ".json"),
    "sweep": (["sweep", "--model", MISSING_MODEL, "--out", "OUT"], ""),
    "profile": (["profile", "--model", MISSING_MODEL, "--out", "OUT"], ""),
}


def command(name: str, out, trace_file) -> list:
    args, _ = COMMANDS[name]
    return [out if a == "OUT" else trace_file if a == "TRACE" else a for a in args]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_fifo_output_is_refused_and_stays_a_fifo(capsys, tmp_path, trace_file, name):
    fifo = tmp_path / ("out" + COMMANDS[name][1])
    os.mkfifo(fifo)
    before = node_id(fifo)
    assert_user_error(capsys, command(name, fifo, trace_file), "fifo", str(fifo))
    assert node_id(fifo) == before and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == [fifo.name], "something was left beside the FIFO"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_dev_null_is_refused_and_stays_a_character_device(capsys, trace_file, name):
    before = node_id("/dev/null")
    assert_user_error(capsys, command(name, "/dev/null", trace_file), "character device", "/dev/null")
    assert node_id("/dev/null") == before and stat.S_ISCHR(os.lstat("/dev/null").st_mode)


@pytest.mark.parametrize("name", ["trace", "logits", "maps", "heads-out", "report"])
def test_a_character_device_named_like_the_output_is_refused(capsys, tmp_path, trace_file, name):
    """A device node made for the test (a copy of /dev/null's numbers) with the right suffix."""
    node = tmp_path / ("dev" + COMMANDS[name][1])
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root (CAP_MKNOD)")
    before = node_id(node)
    assert_user_error(capsys, command(name, node, trace_file), "character device")
    assert node_id(node) == before
    assert node_id("/dev/null")[0] == os.lstat("/dev/null").st_mode


@pytest.mark.parametrize("name", ["trace", "flow", "report", "plot", "logits", "heads-figure"])
def test_a_folder_output_is_refused(capsys, tmp_path, trace_file, name):
    folder = tmp_path / ("dir" + COMMANDS[name][1])
    folder.mkdir()
    assert_user_error(capsys, command(name, folder, trace_file), "directory")
    assert folder.is_dir() and not any(folder.iterdir())


def test_a_socket_output_is_refused(capsys, tmp_path):
    path = tmp_path / "s.json"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        assert_user_error(capsys, ["logits", "hi", "--model", MISSING_MODEL, "--out", path], "socket")
        assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_a_symlink_to_a_fifo_is_refused_naming_the_target(capsys, tmp_path):
    fifo, link = tmp_path / "pipe", tmp_path / "out.jsonl"
    os.mkfifo(fifo)
    link.symlink_to(fifo)
    assert_user_error(capsys, ["trace", "hi", "--model", MISSING_MODEL, "--out", link], "fifo", str(fifo), "symlink")
    assert link.is_symlink() and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_symlink_loop_is_refused(capsys, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.symlink_to(b)
    b.symlink_to(a)
    assert_user_error(capsys, ["logits", "hi", "--model", MISSING_MODEL, "--out", a], "symlink")
    assert a.is_symlink() and b.is_symlink()


def test_a_symlink_is_written_through_and_stays_a_link(capsys, tiny_dir, tmp_path, trace_file):
    real, link = tmp_path / "real.jsonl", tmp_path / "link.jsonl"
    real.write_text("old\n")
    link.symlink_to(real.name)
    code, _, err = run(capsys, "trace", "hello", "--model", tiny_dir, "--out", link, "--json")
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == real.name, "the link was replaced"
    assert json.loads(real.read_text().splitlines()[0])["record"] == "meta"
    figure, dangling = tmp_path / "fig.svg", tmp_path / "new.svg"
    dangling.symlink_to(figure.name)  # a link to a file not there yet: the file is created, as `>` would
    assert run(capsys, "plot", trace_file, "--out", dangling)[0] == 0
    assert dangling.is_symlink() and figure.read_text().startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.svg", "link.jsonl", "new.svg", "real.jsonl"]


def test_library_writers_refuse_special_files(tmp_path):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    with pytest.raises(LmxrayError, match="FIFO"):
        with atomic_output(fifo) as f:
            f.write("x")
    with pytest.raises(LmxrayError, match="FIFO"):
        atomic_write(fifo, lambda tmp: open(tmp, "w").close())
    with pytest.raises(LmxrayError, match="directory"):
        output_target(tmp_path)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and sorted(os.listdir(tmp_path)) == ["f"]


def test_a_target_that_turns_special_during_the_write_is_not_replaced(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(LmxrayError, match="FIFO"):
        with atomic_output(target) as f:
            f.write("{}")
            os.mkfifo(target)  # appears after the early check, before the rename
    assert stat.S_ISFIFO(os.lstat(target).st_mode) and sorted(os.listdir(tmp_path)) == ["out.json"]
    tmp = tmp_path / "tmp"
    tmp.write_text("x")
    with pytest.raises(LmxrayError, match="FIFO"):
        replace_regular(tmp, target)


def test_a_regular_file_is_still_replaced(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with atomic_output(target) as f:
        f.write("new")
    assert target.read_text() == "new" and os.lstat(target).st_mode & 0o777 == 0o644


def test_convert_refuses_a_fifo_or_device_output(capsys, tmp_path, trace_file):
    fifo = tmp_path / "t.safetensors"
    os.mkfifo(fifo)
    assert_user_error(capsys, ["convert", trace_file, fifo], "fifo")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    node = tmp_path / "dev.safetensors"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        return
    before = node_id(node)
    assert_user_error(capsys, ["convert", trace_file, node], "character device")
    assert node_id(node) == before
