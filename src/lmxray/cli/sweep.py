"""`lmxray sweep`: prompt-pair attention divergence by layer, resumable, with a category summary."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lmxray.cli.app import DEFAULT_MODEL, DeviceOpt, DtypeOpt, InitOpt, ModelOpt, SeedOpt, app
from lmxray.cli.runs import FreshOpt, JsonOpt, SummaryOpt
from lmxray.cli.scale import (AddressOpt, DeviceMapOpt, EngineOpt, GpusOpt, WorkersOpt, engine_for, run_resumable,
                              show_view)


@app.command()
def sweep(
    dataset: Optional[Path] = typer.Argument(None, help="Pairs as JSONL or CSV (id, category, intended, contradictory[, expected, expected_positions]), or a shipped set: contexts (the default) or length-matched."),
    model: ModelOpt = DEFAULT_MODEL,
    out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default: runs/sweep-<model>)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Pairs per forward pass."),
    threshold: float = typer.Option(0.05, "--threshold", help="JS divergence above this marks the first divergence layer."),
    align: str = typer.Option("tokens", "--align", help="tokens: shared tokens matched one to one, each differing span one unit; start: position 0 with position 0; end: prediction positions lined up."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N pairs."),
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    workers: WorkersOpt = None,
    gpus_per_worker: GpusOpt = 0.0,
    device_map: DeviceMapOpt = None,
    fresh: FreshOpt = False,
    summary: SummaryOpt = None,
    as_json: JsonOpt = False,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    init: InitOpt = "pretrained",
    seed: SeedOpt = 0,
):
    """Trace matched prompt pairs and compare the prediction position's attention layer by layer."""
    from lmxray.experiments.datasets import pair_source, read_pairs
    from lmxray.experiments.sweep import SweepConfig, run_sweep, sweep_store
    from lmxray.experiments.sweep_report import finish_sweep
    from lmxray.render.run_tables import print_sweep
    from lmxray.views import sweep_view

    if summary is not None:
        show_view(sweep_view(summary), as_json, print_sweep)
        return
    config = SweepConfig(batch_size=batch_size, align=align, threshold=threshold, limit=limit)
    runner = engine_for(engine, address, workers, gpus_per_worker, device_map, model, device, dtype, init, seed)
    pairs = read_pairs(pair_source(dataset))
    chosen = pairs[: config.limit] if config.limit else pairs
    folder, stats, _ = run_resumable(
        "sweep", "pairs", runner, pairs, config, sweep_store, run_sweep,
        lambda store, name: finish_sweep(store, chosen, config.threshold, name),
        out_path=out_path, fresh=fresh, as_json=as_json)
    show_view(sweep_view(folder, stats), as_json, print_sweep)
