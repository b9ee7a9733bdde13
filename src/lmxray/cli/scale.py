"""The options of the commands that run on an engine (sweep, profile, batch): where batches are computed, by how
many workers, and how a model bigger than one device is spread."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from lmxray.cli.app import check_seed, err, load_model

EngineOpt = Annotated[str, typer.Option(
    "--engine", help="local: batches run in this process; ray: on a Ray cluster (pip install 'lmxray\\[ray]').")]
AddressOpt = Annotated[Optional[str], typer.Option(
    "--address", help="With --engine ray: the cluster (host:6379, ray://host:10001 or auto); default: a one-machine "
    "cluster started for this run.")]
WorkersOpt = Annotated[Optional[int], typer.Option(
    "--workers", help="With --engine ray: workers, each loading the model once (default: the cluster's GPUs divided "
    "by --gpus-per-worker, or one 1-thread worker per CPU).")]
GpusOpt = Annotated[float, typer.Option(
    "--gpus-per-worker", help="With --engine ray: GPUs each worker holds (add --device-map auto to spread the model "
    "over them).")]
DeviceMapOpt = Annotated[Optional[str], typer.Option(
    "--device-map", help="Spread the model over several devices with accelerate: auto, balanced, sequential, or "
    'JSON {"module.path": device}.')]


def engine_for(engine: str, address: str | None, workers: int | None, gpus_per_worker: float,
               device_map: str | None, model: str, device: str, dtype: str, init: str, seed: int):
    """The engine the options ask for, checked before anything is loaded or written."""
    from lmxray.engines import ModelRef, make_engine
    from lmxray.engines.placement import parse_device_map

    check_seed(seed)
    ref = ModelRef(model, device=device, dtype=dtype, init=init, seed=seed, device_map=parse_device_map(device_map))
    return make_engine(engine, ref, address=address, workers=workers, gpus_per_worker=gpus_per_worker)


def driver_model(engine):
    """The model this process holds: loaded (local) or its weightless card (ray), with the usual progress line."""
    ref = engine.model
    if engine.name == "local" and ref.device_map is None:
        return load_model(ref.spec, ref.device, ref.dtype, ref.init, ref.seed)
    with err.status(f"loading {ref.spec}..."):
        return engine.driver_model()
