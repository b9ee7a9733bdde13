"""Engines: where the batches of a sweep, profile or batch run are computed — in this process or on a Ray cluster.

Both run a job's same per-batch functions and store the same Parquet parts
(job.py); Ray is an optional extra (``pip install 'lmxray[ray]'``).
"""

from __future__ import annotations

from lmxray.engines.job import Engine, Item, Job, Output, identity, run_job
from lmxray.engines.local import LocalEngine
from lmxray.engines.model_ref import ModelRef
from lmxray.errors import LmxrayError

ENGINES = ("local", "ray")


def make_engine(name: str, model: ModelRef, address: str | None = None, workers: int | None = None,
                gpus_per_worker: float = 0.0) -> Engine:
    """The engine a command runs on, checked before any model loads (``--engine ray`` without Ray is refused)."""
    if name not in ENGINES:
        raise LmxrayError(f"unknown engine '{name}'", "pass --engine local or --engine ray")
    if model.device_map is not None:
        from lmxray.engines.placement import check_accelerate

        check_accelerate()
    if name == "local":
        extra = [flag for flag, value in (("--address", address), ("--workers", workers),
                                          ("--gpus-per-worker", gpus_per_worker or None)) if value is not None]
        if extra:
            raise LmxrayError(f"{', '.join(extra)} only apply to --engine ray", "add --engine ray, or drop them")
        return LocalEngine(model)
    from lmxray.engines.ray_engine import RayEngine

    return RayEngine(model, address, workers, gpus_per_worker)


__all__ = ["ENGINES", "Engine", "Item", "Job", "LocalEngine", "ModelRef", "Output", "identity", "make_engine",
           "run_job"]
