"""The Ray engine on real local clusters (loopback only): its finished tables equal the local engine's on the shipped
sets, a worker killed mid-batch is retried, a killed driver resumes without duplicates, and a cluster of two node
processes started with `ray start` runs `lmxray batch` (its traces sent back through Ray)."""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lmxray.engines import Item, ModelRef, identity, make_engine, run_job
from lmxray.engines.ray_engine import LOOPBACK_ENV
from lmxray.experiments.datasets import SHIPPED_LENGTH_MATCHED_PAIRS, SHIPPED_PAIRS, read_pairs
from lmxray.experiments.sweep import SweepConfig, SweepJob, sweep_store
from lmxray.trace.reader import read_trace
from cli_helpers import run
from tiny_models import tiny_model, tiny_tokenizer

pytestmark = [pytest.mark.ray, pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                                  reason="needs Ray: pip install 'lmxray[ray]'")]
ENGINE_TOL = 1e-6  # a finished table of the Ray engine vs the local engine's (other batches, other processes)
POSITIONS = 256  # the tiny model's context, raised so the shipped pairs and corpora fit (RoPE has no length limit)
CLI = [sys.executable, "-c", "import sys; from lmxray.cli import main; sys.exit(main())"]
RAY = str(Path(sys.executable).parent / "ray")


@pytest.fixture(scope="module")
def token():
    """One token for every Ray process these tests start (Ray's token authentication, no file in ~/.ray)."""
    return secrets.token_hex(32)


@pytest.fixture(scope="module")
def cluster(token):
    """A two-CPU cluster in this process, every server on 127.0.0.1; yields its address."""
    env = {LOOPBACK_ENV: "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # read when Ray is imported, and by the processes it starts
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             logging_level="ERROR")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers get this module's jobs by value
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """The tiny llama with a longer context, saved as an HF directory (what a worker loads)."""
    path = tmp_path_factory.mktemp("tiny-long")
    model = tiny_model("llama")
    model.config.max_position_embeddings = POSITIONS
    model.save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path


def assert_same_tables(local: Path, ray: Path, names: list[str]) -> None:
    """Every table of two run folders: the same columns and rows, numbers within ENGINE_TOL."""
    for name in names:
        a, b = pq.read_table(local / name), pq.read_table(ray / name)
        assert a.schema.equals(b.schema), f"{name}: the Ray engine wrote another schema"
        assert a.num_rows == b.num_rows, f"{name}: {b.num_rows} rows on Ray, {a.num_rows} locally"
        for column in a.column_names:
            x, y = a.column(column).to_pylist(), b.column(column).to_pylist()
            if x and isinstance(next((v for v in x if v is not None), ""), float):
                x, y = (np.array([np.nan if v is None else v for v in c], dtype=float) for c in (x, y))
                assert np.array_equal(np.isnan(x), np.isnan(y)), f"{name}.{column}: missing values differ"
                drift = float(np.nanmax(np.abs(x - y), initial=0.0))
                assert drift <= ENGINE_TOL, f"{name}.{column}: the Ray engine drifts {drift:.3e} from local"
            else:
                assert x == y, f"{name}.{column} differs between the engines"


def sweep_items(model, pairs) -> list[Item]:
    """A sweep's work items as run_sweep builds them (both prompts' ids, sized by the longer)."""
    ids = [(model.encode(p.intended), model.encode(p.contradictory)) for p in pairs]
    return [Item(p.id, max(len(x) for x in i), (p, i)) for p, i in zip(pairs, ids)]


class KillOnce:
    """A sweep job whose first batch SIGKILLs its own worker mid-way, once (the marker file says it happened)."""

    def __init__(self, job, marker: Path):
        self.job, self.marker = job, marker

    def launch(self, model, items):
        launched = self.job.launch(model, items)  # the forward pass ran; the worker dies before returning it
        if not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return launched

    def collect(self, model, launched):
        return self.job.collect(model, launched)


def test_sweep_with_a_worker_killed_mid_batch_equals_the_local_sweep(capsys, cluster, model_dir, tmp_path):
    local, folder = tmp_path / "local", tmp_path / "ray"
    assert run(capsys, "sweep", "length-matched", "--model", model_dir, "--out", local)[0] == 0
    engine = make_engine("ray", ModelRef(str(model_dir)))
    card = engine.driver_model()
    store = sweep_store(folder, str(model_dir), SweepConfig())
    store.begin(identity(card))
    marker = tmp_path / "killed"
    items = sweep_items(card, read_pairs(SHIPPED_LENGTH_MATCHED_PAIRS))
    stats = run_job(engine, KillOnce(SweepJob("tokens"), marker), card, items, store, SweepConfig().batch_size)
    store.unlock()
    assert marker.exists(), "no worker was killed"
    assert stats["computed"] == len(items) == 110
    code, _, err = run(capsys, "sweep", "length-matched", "--model", model_dir, "--out", folder)  # tables only
    assert code == 0 and "0 pairs computed, 110 resumed" in err, err
    assert_same_tables(local, folder, ["layers.parquet", "pairs.parquet", "summary.parquet", "bos_profile.parquet"])


DRIVER = """
import sys, time
from lmxray.engines import Item, ModelRef, identity, make_engine, run_job
from lmxray.experiments.datasets import SHIPPED_PAIRS, read_pairs
from lmxray.experiments.sweep import SweepConfig, SweepJob, sweep_store
from lmxray.trace.reader import read_trace

class Slow(SweepJob):  # a sweep that takes long enough to be killed mid-way
    def collect(self, model, launched):
        time.sleep(0.4)
        return super().collect(model, launched)

model, folder, address = sys.argv[1:]
engine = make_engine("ray", ModelRef(model), address=address)
card = engine.driver_model()
store = sweep_store(folder, model, SweepConfig(batch_size=4))
store.begin(identity(card))
pairs = read_pairs(SHIPPED_PAIRS)
ids = [(card.encode(p.intended), card.encode(p.contradictory)) for p in pairs]
run_job(engine, Slow("tokens"), card, [Item(p.id, max(map(len, i)), (p, i)) for p, i in zip(pairs, ids)], store, 4)
"""


def test_a_killed_driver_resumes_to_the_local_tables_without_duplicates(capsys, cluster, model_dir, tmp_path):
    local, folder = tmp_path / "local", tmp_path / "ray"
    assert run(capsys, "sweep", "--model", model_dir, "--out", local, "--batch-size", 4)[0] == 0
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(model_dir), str(folder), cluster],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list((folder / "parts").glob("part-*.parquet"))) < 3 and time.monotonic() < deadline:
        assert driver.poll() is None, f"the driver ended before it could be killed: {driver.stderr.read()[-2000:]!r}"
        time.sleep(0.01)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and anything it started
    driver.wait()
    driver.stderr.close()
    done = len({i for part in (folder / "parts").glob("part-*.parquet")
                for i in pq.read_table(part, columns=["id"]).column("id").to_pylist()})
    assert 12 <= done < 108, f"the kill landed after {done} of 108 pairs"
    code, _, err = run(capsys, "sweep", "--model", model_dir, "--out", folder, "--batch-size", 4, "--engine", "ray")
    assert code == 0 and f"{108 - done} pairs computed, {done} resumed" in err, err
    assert_same_tables(local, folder, ["layers.parquet", "pairs.parquet", "summary.parquet", "bos_profile.parquet"])


def test_profile_of_the_shipped_corpora_equals_the_local_profile(capsys, cluster, model_dir, tmp_path):
    for engine in ("local", "ray"):
        code, _, err = run(capsys, "profile", "--model", model_dir, "--out", tmp_path / engine, "--engine", engine,
                           "--max-tokens", POSITIONS, "--batch-size", 16)
        assert code == 0, err
    assert_same_tables(tmp_path / "local", tmp_path / "ray", ["samples.parquet", "profile.parquet", "ranking.parquet"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_args() -> list[str]:
    """Options that keep a second node process on this machine off the first one's ports, and on loopback."""
    ports = ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port", "runtime-env-agent-port")
    return ["--block", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats",
            *(f"--{name}={free_port()}" for name in ports)]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the Ray head ended"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"the Ray head did not listen on {port}")


def stop(process: subprocess.Popen, sig: int) -> None:
    """Signal a node process's group (it and what it started), if any of it is left."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def test_batch_on_a_cluster_of_two_node_processes(capsys, cluster, model_dir, token, tmp_path):
    pairs = read_pairs(SHIPPED_PAIRS)[:24]  # the shipped sets' equality is the tests above; here, the cluster
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": p.id, "text": p.intended}) + "\n" for p in pairs))
    env = {**os.environ, LOOPBACK_ENV: "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    port, nodes = free_port(), []
    log = open(tmp_path / "nodes.log", "w")
    sessions = tempfile.mkdtemp(prefix="lmxray-ray-")  # short: Ray's socket paths must fit in 107 bytes
    try:
        nodes.append(subprocess.Popen([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false",
                                       f"--temp-dir={sessions}", *node_args()], env=env,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        wait_for_port(port, nodes[0])
        nodes.append(subprocess.Popen([RAY, "start", f"--address=127.0.0.1:{port}", *node_args()], env=env,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        done = subprocess.run([*CLI, "batch", str(prompts), "--model", str(model_dir), "--out", str(tmp_path / "ray"),
                               "--engine", "ray", "--address", f"127.0.0.1:{port}", "--workers", "2", "--json",
                               "--traces", "safetensors"],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:] + (tmp_path / "nodes.log").read_text()[-3000:]
        assert json.loads(done.stdout)["run_stats"]["computed"] == len(pairs)
    finally:
        for node in nodes:  # `ray start --block` stops its node's processes on SIGTERM
            stop(node, signal.SIGTERM)
        for node in nodes:
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop(node, signal.SIGKILL)
        log.close()
        shutil.rmtree(sessions, ignore_errors=True)
    assert run(capsys, "batch", prompts, "--model", model_dir, "--out", tmp_path / "local", "--traces",
               "safetensors")[0] == 0
    assert_same_tables(tmp_path / "local", tmp_path / "ray", ["prompts.parquet", "layers.parquet"])
    for row in pq.read_table(tmp_path / "ray" / "prompts.parquet").to_pylist():  # written by the driver, sent by Ray
        assert read_trace(tmp_path / "ray" / row["trace_file"]).predicted_token == row["predicted_id"]
