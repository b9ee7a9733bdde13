"""The run store under real crashes and real processes: a writer SIGKILLed at random moments, two writers at once.

Writers are forked from the test process (lmxray is already imported, so a child starts in milliseconds).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from contextlib import closing

from lmxray.store import TraceStore
from lmxray.trace.reader import read_trace
from test_store import assert_consistent, assert_same_trace, numbered_trace, put_numbered

KILLS = 10  # at least; more (up to 3x) when none caught a put mid-write
RUNS_PER_WRITER = 100_000  # run numbers of writer k start at k * RUNS_PER_WRITER, so no two writers share one


def fork_writer(root, first: int, count: int | None, max_bytes: int | None, order_seed: int = 0) -> tuple[int, int]:
    """(pid, read end of a pipe): the child opens the store, writes one byte, then puts runs ``first``, ``first+1``...

    ``count`` None puts forever (until killed); else the child puts ``count`` runs in a shuffled order and exits 0.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write)
        return pid, read
    code = 1
    try:
        os.close(read)
        store = TraceStore(root, max_bytes=max_bytes)
        os.write(write, b"r")
        if count is None:
            i = first
            while True:
                put_numbered(store, i)
                if i % 3 == 0:
                    store.get(store.key("c" * 64, f"run {i - 1}", {}))  # reads between writes move the LRU order
                i += 1
        numbers = list(range(first, first + count))
        random.Random(order_seed).shuffle(numbers)
        for i in numbers:
            os.write(write, put_numbered(store, i).run_id.encode() + b"\n")
        code = 0
    finally:
        os._exit(code)


def read_all(fd: int) -> bytes:
    out = b""
    while chunk := os.read(fd, 65536):
        out += chunk
    os.close(fd)
    return out


def leftovers(root) -> tuple[list[str], list[str]]:
    """(temporary files, trace files without a row): what a kill left between mkstemp and rename, or rename and commit.

    Checks on the way that every row, as the kill left it, names a whole trace equal to what was put.
    """
    folder = root / ".lmxray-store"
    with closing(sqlite3.connect(folder / "index.sqlite")) as db:
        rows = dict(db.execute("SELECT run_id, prompt FROM runs").fetchall())
    for run_id, prompt in rows.items():
        assert_same_trace(read_trace(folder / "traces" / f"{run_id}.safetensors"),
                          numbered_trace(int(prompt.split()[1])), f"listed run {run_id}: ")
    names = os.listdir(folder / "traces")
    return ([n for n in names if not n.endswith(".safetensors")],
            [n for n in names if n.endswith(".safetensors") and n.removesuffix(".safetensors") not in rows])


def test_a_writer_killed_at_random_moments_never_leaves_a_broken_run(tmp_path):
    one = put_numbered(TraceStore(tmp_path / "probe"), 0).bytes
    rng = random.Random(0)
    temps = orphans = k = 0
    while k < KILLS or (not temps and k < 3 * KILLS):  # on a fast disk a put is short: kill again until one is caught
        k += 1
        pid, ready = fork_writer(tmp_path, k * RUNS_PER_WRITER, None, max_bytes=40 * one)
        assert os.read(ready, 1) == b"r", "the writer did not start"
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(ready)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "the writer ended before the kill"
        tmp, orphan = leftovers(tmp_path)
        temps, orphans = temps + bool(tmp), orphans + bool(orphan)
    assert temps, "no kill caught a put mid-write: the test did not exercise the recovery"
    store = TraceStore(tmp_path, max_bytes=40 * one)
    runs = assert_consistent(store)  # every listed run opens and equals what was put; no orphan or temp file
    assert leftovers(tmp_path) == ([], [])
    with closing(sqlite3.connect(store.folder / "index.sqlite")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    print(f"{k} kills: {temps} left a temporary file, {orphans} a file without a row; {len(runs)} runs listed")


def test_two_processes_putting_the_same_runs_store_each_once(tmp_path):
    TraceStore(tmp_path).close()
    writers = [fork_writer(tmp_path, 0, 12, max_bytes=None, order_seed=seed) for seed in (1, 2)]
    got = []
    for pid, out in writers:
        lines = read_all(out)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"writer {pid} failed"
        got.append(lines.decode()[1:].split())  # after the ready byte: one run id per put, in put order
    store = TraceStore(tmp_path)
    runs = assert_consistent(store)
    assert len(runs) == 12
    by_prompt = {r.prompt: r.run_id for r in runs}
    assert sorted(got[0]) == sorted(got[1]) == sorted(by_prompt.values()), "both writers got the one run per key"
