"""Run folders: one run at a time (a lock the kernel frees when the holder dies), duplicate ids across parts and
corrupt parts are one-line errors that name the parts."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lmxray.errors import LmxrayError
from lmxray.experiments.folder_lock import LOCK_NAME, FolderLock
from lmxray.experiments.store import RunStore
from cli_helpers import assert_user_error, run
from test_sweep import snapshot, write_pairs

SRC = str(Path(__file__).parents[1] / "src")
HOLD = ("import sys, time; from lmxray.experiments.folder_lock import FolderLock; "
        "FolderLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(600)")
TABLES = ("layers.parquet", "pairs.parquet", "summary.parquet", "bos_profile.parquet")


def same(a: pa.Table, b: pa.Table) -> bool:
    """Equal schemas and values, NaN equal to NaN (float reprs are exact)."""
    return a.schema == b.schema and repr(a.to_pylist()) == repr(b.to_pylist())


def start_holder(folder: Path) -> subprocess.Popen:
    """A child process that takes the folder's lock and sleeps."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": SRC})
    assert proc.stdout.readline().strip() == "locked", "the holder did not get the lock"
    return proc


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_second_run_is_refused_naming_the_holder_and_sigkill_frees_the_lock(capsys, tiny_dir, tmp_path):
    pairs, folder, corpus = write_pairs(tmp_path / "pairs.jsonl", 3), tmp_path / "run", tmp_path / "corpus.txt"
    corpus.write_text("some text\n\nmore text\n")
    holder = start_holder(folder)
    try:
        for args in (["sweep", pairs], ["profile", "--corpus", f"c={corpus}"]):
            before = snapshot(folder)
            assert_user_error(capsys, [*args, "--model", tiny_dir, "--out", folder],
                              "in use", f"pid {holder.pid}", f"kill {holder.pid}")
            assert snapshot(folder) == before, "a refused run changed the folder"
    finally:
        kill(holder)
    lock = FolderLock(folder)
    lock.acquire()  # free again: the kernel dropped the dead holder's lock
    lock.release()
    code, _, err = run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder)
    assert code == 0, err
    assert (folder / LOCK_NAME).is_file() and (folder / "pairs.parquet").is_file()


def test_two_concurrent_sweeps_the_second_refused_the_first_as_a_lone_run(capsys, tiny_dir, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 12)
    lone, shared = tmp_path / "lone", tmp_path / "shared"
    assert run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", lone, "--batch-size", 1)[0] == 0
    args = [sys.executable, "-c", "import sys; from lmxray.cli import main; sys.exit(main())", "sweep", str(pairs),
            "--model", str(tiny_dir), "--out", str(shared), "--batch-size", "1", "--json"]
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": SRC})
    deadline = time.monotonic() + 120
    while not _pid_in(shared) and time.monotonic() < deadline:
        assert first.poll() is None, f"the first sweep ended early: {first.stderr.read()}"
        time.sleep(0.005)
    assert_user_error(capsys, ["sweep", pairs, "--model", tiny_dir, "--out", shared, "--batch-size", 1],
                      "in use", f"pid {first.pid}")
    assert first.wait(timeout=300) == 0, first.stderr.read()
    for name in TABLES:
        a, b = pq.read_table(lone / name), pq.read_table(shared / name)
        assert same(a, b), f"{name}: the locked run's table differs from a lone run's"


def _pid_in(folder: Path) -> bool:
    try:
        return bool((folder / LOCK_NAME).read_text().strip())
    except FileNotFoundError:
        return False


def test_the_lock_is_per_store_and_begin_takes_it(tmp_path):
    folder = tmp_path / "run"
    first = RunStore(folder, "sweep", "m", {})
    first.begin({"name": "m"})
    second = RunStore(folder, "sweep", "m", {})
    with pytest.raises(LmxrayError, match="in use by another run in this process"):
        second.lock()
    first.unlock()
    with second:
        assert second._lock.held
    assert not second._lock.held and (folder / "run.json").is_file()


def test_a_folder_made_for_a_run_that_failed_before_claiming_it_is_removed(tmp_path):
    folder = tmp_path / "new" / "run"
    with pytest.raises(RuntimeError):
        with RunStore(folder, "sweep", "m", {}):
            assert (folder / LOCK_NAME).is_file()
            raise RuntimeError("the model did not load")
    assert not folder.exists()


def test_only_a_lock_file_left_behind_is_still_a_usable_folder(capsys, tiny_dir, tmp_path):
    pairs, folder = write_pairs(tmp_path / "pairs.jsonl", 2), tmp_path / "run"
    folder.mkdir()
    (folder / LOCK_NAME).write_text("999999\n")  # a holder killed before it wrote anything else
    code, _, err = run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder)
    assert code == 0, err


def test_a_lock_file_that_is_not_a_regular_file_is_refused(capsys, tiny_dir, tmp_path):
    pairs, folder = write_pairs(tmp_path / "pairs.jsonl", 2), tmp_path / "run"
    folder.mkdir()
    os.mkfifo(folder / LOCK_NAME)
    assert_user_error(capsys, ["sweep", pairs, "--model", tiny_dir, "--out", folder], "lock file", "fifo")


@pytest.fixture
def parted(capsys, tiny_dir, tmp_path):
    """A finished sweep of 4 pairs in 4 parts, and its pairs file."""
    pairs, folder = write_pairs(tmp_path / "pairs.jsonl", 4), tmp_path / "run"
    assert run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder, "--batch-size", 1)[0] == 0
    return pairs, folder


def test_duplicate_ids_across_parts_name_the_parts(capsys, tiny_dir, parted):
    pairs, folder = parted
    reference = {name: pq.read_table(folder / name) for name in TABLES}
    shutil.copy(folder / "parts" / "part-000001.parquet", folder / "parts" / "part-000007.parquet")
    args = ["sweep", pairs, "--model", tiny_dir, "--out", folder, "--batch-size", 1]
    assert_user_error(capsys, args, "more than one part", "part-000001.parquet", "part-000007.parquet",
                      "delete the later part (part-000007.parquet)", "--fresh")
    (folder / "parts" / "part-000007.parquet").unlink()
    code, _, err = run(capsys, *args)
    assert code == 0 and "0 pairs computed, 4 resumed" in err, err
    for name, table in reference.items():
        assert same(pq.read_table(folder / name), table), name


def test_a_corrupt_part_is_named_with_its_fix_and_recomputed_once_deleted(capsys, tiny_dir, parted):
    pairs, folder = parted
    reference = {name: pq.read_table(folder / name) for name in TABLES}
    part = folder / "parts" / "part-000002.parquet"
    part.write_bytes(part.read_bytes()[:200])  # truncated
    args = ["sweep", pairs, "--model", tiny_dir, "--out", folder, "--batch-size", 1]
    assert_user_error(capsys, args, str(part), "truncated or corrupt", f"delete {part}")
    part.write_bytes(b"not parquet at all")
    assert_user_error(capsys, args, str(part), "truncated or corrupt")
    part.unlink()
    code, _, err = run(capsys, *args)
    assert code == 0 and "1 pairs computed, 3 resumed" in err, err
    assert sorted(p.name for p in (folder / "parts").iterdir())[-1] == "part-000004.parquet", \
        "the recomputed part must not reuse a number still in use"
    for name, table in reference.items():
        assert same(pq.read_table(folder / name), table), name


def test_a_part_without_ids_or_with_other_columns_is_named(tmp_path):
    store = RunStore(tmp_path / "run", "sweep", "m", {})
    with store:
        store.begin({"name": "m"})
        store.append(pa.table({"id": ["a"], "x": [1.0]}))
        pq.write_table(pa.table({"y": [1]}), store.parts / "part-000001.parquet")
        with pytest.raises(LmxrayError, match="part-000001.parquet"):
            store.done_ids()
        pq.write_table(pa.table({"id": ["b"], "y": ["s"]}), store.parts / "part-000001.parquet")
        with pytest.raises(LmxrayError, match="different columns"):
            store.read()
