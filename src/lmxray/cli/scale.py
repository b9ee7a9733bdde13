"""The options of the commands that run on an engine (sweep, profile, batch): where batches are computed, by how
many workers, and how a model bigger than one device is spread; and the run they share once the options are read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from lmxray.cli.app import check_seed, err, load_model, out
from lmxray.cli.runs import print_run_stats, progress_bar, run_folder

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


def run_resumable(command: str, unit: str, runner, items, config, make_store: Callable, run: Callable,
                  finish: Callable, *, out_path: Path | None, fresh: bool, as_json: bool) -> tuple[Path, dict, dict]:
    """Run ``items`` on the engine into the command's run folder and write its outputs: (folder, run stats, summary).

    ``make_store(folder, key, config)`` ties the folder to the run; ``run(model, items, store, config, fresh=,
    progress=, engine=)`` computes the pending batches; ``finish(store, model_name)`` writes the outputs.
    """
    ref = runner.model
    key, folder = run_folder(command, ref.spec, ref.init, ref.seed, out_path)
    store = make_store(folder, key, config)
    store.check(fresh)
    with store:  # one run per folder: a second is refused at once, naming this one's pid
        loaded = driver_model(runner)
        with progress_bar(unit) as progress:
            stats = run(loaded, items, store, config, fresh=fresh, progress=progress, engine=runner)
        result = finish(store, loaded.info.name)
    if not as_json:
        print_run_stats(stats, unit)
    return folder, stats, result


def show_view(view, as_json: bool, print_tables: Callable) -> None:
    """Print a run's view: its JSON, or its tables as ``print_tables(console, view)`` lays them out."""
    if as_json:
        out.print_json(data=view.to_dict())
    else:
        print_tables(out, view)
