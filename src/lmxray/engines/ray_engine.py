"""The Ray engine: Ray Data ``map_batches`` over the batches with a pool of actors that each load the model once.

Each input row is one batch of items, formed by the driver as the local engine
forms them (longest first, ``batch_size`` at a time): their ids and pickled
data. Each output row is that batch finished: its ids, its rows as an Arrow IPC
stream, its files and the identity of the weights that computed it. The driver
stores every output row as one part, so a part always holds whole items,
whatever order batches finish in. Ray restarts a worker that dies and runs its
batch again; a batch that arrives twice adds nothing (job.store_output).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import pickle
import sys
from contextlib import contextmanager
from typing import Callable

import pyarrow as pa

from lmxray.engines.job import Item, Job, Output, identity
from lmxray.engines.model_ref import ModelRef
from lmxray.errors import LmxrayError

INSTALL_FIX = "pip install 'lmxray[ray]'"
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": the node's address is 127.0.0.1 (ray_constants.py)
RAY_LOGGERS = ("ray", "ray.data")  # their INFO and WARNING lines (progress, token auth) are not the CLI's output


def check_ray() -> None:
    """Refuse ``--engine ray`` at once when Ray is not installed (without importing it: see connect)."""
    if importlib.util.find_spec("ray") is None:
        raise LmxrayError("--engine ray needs Ray, which is not installed", INSTALL_FIX)


class RayEngine:
    """Batches on a Ray cluster: ``address`` None starts a one-machine cluster for the run (loopback only);
    ``workers`` None uses every GPU (``gpus_per_worker`` each) or else one 1-thread worker per CPU."""

    name = "ray"

    def __init__(self, model: ModelRef, address: str | None = None, workers: int | None = None,
                 gpus_per_worker: float = 0.0, cpus_per_worker: int = 1):
        check_ray()
        if workers is not None and workers < 1:
            raise LmxrayError(f"--workers must be at least 1, got {workers}", "pass --workers 1 or more")
        if gpus_per_worker < 0:
            raise LmxrayError(f"--gpus-per-worker must be 0 or more, got {gpus_per_worker:g}",
                              "pass e.g. --gpus-per-worker 1")
        self.model, self.address, self.workers = model, address, workers
        self.gpus, self.cpus = gpus_per_worker, cpus_per_worker

    def driver_model(self, progress: Callable[[str], None] | None = None):
        """What the driver holds: the model's card (tokenizer, config, identity), never its weights."""
        return self.model.card(self.gpus)

    def run(self, job: Job, model, items: list[Item], batch_size: int, keep: Callable[[Output], None]) -> None:
        started = connect(self.address)
        import ray

        with quiet_ray():
            try:
                workers = self.workers or default_workers(ray.cluster_resources(), self.gpus, self.cpus)
                # the local engine's batches: the same prompts padded together, whichever engine runs them
                chunks = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
                rows = [{"ids": [it.id for it in chunk], "items": pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)}
                        for chunk in chunks]
                dataset = ray.data.from_items(rows, override_num_blocks=len(rows))  # one block, one task per batch
                # Ray Data restarts an actor that dies and retries its batch (max_restarts and max_task_retries -1)
                batches = dataset.map_batches(
                    BatchWorker, fn_constructor_kwargs={"ref": self.model, "job": job, "threads": self.cpus},
                    batch_size=1, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
                    num_cpus=self.cpus, num_gpus=self.gpus)
                want = identity(model)
                for row in batches.iter_rows():
                    keep(decode(row, want))
            except Exception as e:
                user = _user_error(e)
                if user is None:
                    raise
                raise user from None
            finally:
                if started:
                    ray.shutdown()


class BatchWorker:
    """One Ray actor: loads the model once, then runs the job's per-batch functions on each batch it is given."""

    def __init__(self, ref: ModelRef, job: Job, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.model, self.job = ref.load(), job
        self.identity = json.dumps(identity(self.model), sort_keys=True)

    def __call__(self, batch: dict) -> dict:
        items = pickle.loads(batch["items"][0])  # one row: one batch of items, formed by the driver
        output = self.job.collect(self.model, self.job.launch(self.model, items))
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, output.table.schema) as writer:
            writer.write_table(output.table)
        return {"ids": [[it.id for it in items]], "rows": [sink.getvalue().to_pybytes()],
                "files": [pickle.dumps(output.files)], "identity": [self.identity]}


def decode(row: dict, want: dict) -> Output:
    """One output row of the workers as the batch's Output, after checking the weights that computed it."""
    got = json.loads(row["identity"])
    if got != want:
        raise LmxrayError(f"a Ray worker loaded other weights ({got}) than the driver's model ({want})",
                          "give every node the same model files (same path), or run with --engine local")
    table = pa.ipc.open_stream(row["rows"]).read_all()
    return Output(table, pickle.loads(row["files"]))


def connect(address: str | None) -> bool:
    """Join the cluster at ``address``, or start a one-machine cluster on loopback when it is None; False when this
    process is connected already (then it stays so), else True: the caller shuts the connection down."""
    with loopback(address is None):
        import ray
        import ray.data

        if ray.is_initialized():
            return False
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        try:
            with quiet_ray():
                if address is None:
                    ray.init(num_cpus=os.cpu_count(), _node_ip_address="127.0.0.1", **options)
                else:
                    ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise LmxrayError(f"cannot reach the Ray cluster at {address or 'this machine'} ({reason})",
                              "start it with `ray start --head` and pass its address to --address") from None
    return True


@contextmanager
def loopback(local: bool):
    """For a one-machine cluster, Ray's own switch (read when Ray is first imported, and by the processes it
    starts) that binds every Ray server to 127.0.0.1 instead of the machine's address; restored afterwards."""
    if not local or "ray" in sys.modules:
        yield
        return
    before = os.environ.get(LOOPBACK_ENV)
    os.environ[LOOPBACK_ENV] = "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ[LOOPBACK_ENV]
        else:
            os.environ[LOOPBACK_ENV] = before


@contextmanager
def quiet_ray():
    """Ray's own log lines at ERROR and above only, for the duration; the levels are restored afterwards.
    Used after Ray is imported, as importing ray.data sets its loggers' levels."""
    loggers = [logging.getLogger(name) for name in RAY_LOGGERS]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def default_workers(resources: dict, gpus_per_worker: float, cpus_per_worker: int) -> int:
    """As many workers as the cluster holds: its GPUs over ``gpus_per_worker``, else its CPUs over the threads."""
    if gpus_per_worker > 0:
        n = int(resources.get("GPU", 0) // gpus_per_worker)
        if n < 1:
            raise LmxrayError(f"the Ray cluster has {resources.get('GPU', 0):g} GPUs, fewer than one worker's "
                              f"{gpus_per_worker:g}", "pass --gpus-per-worker 0 for CPU workers, or add GPU nodes")
        return n
    return max(1, int(resources.get("CPU", 1) // cpus_per_worker))


def _user_error(error: BaseException) -> LmxrayError | None:
    """The LmxrayError a worker raised, found in the chain Ray wraps it in; None for any other failure."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, LmxrayError):
            return LmxrayError(error.problem, error.fix, params=error.params)
        error = getattr(error, "cause", None) or error.__cause__ or error.__context__
    return None
