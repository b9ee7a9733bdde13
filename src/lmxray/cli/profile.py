"""`lmxray profile`: per-layer residual-delta statistics of text corpora, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lmxray.cli.app import DEFAULT_MODEL, DeviceOpt, DtypeOpt, InitOpt, ModelOpt, SeedOpt, app
from lmxray.cli.runs import FreshOpt, JsonOpt, SummaryOpt
from lmxray.cli.scale import (AddressOpt, DeviceMapOpt, EngineOpt, GpusOpt, WorkersOpt, engine_for, run_resumable,
                              show_view)
from lmxray.errors import LmxrayError


@app.command()
def profile(
    corpus: Optional[list[str]] = typer.Option(None, "--corpus", "-c", help="NAME=PATH: a folder of text files, a .txt of blank-line separated samples, or JSONL with 'text'. Repeatable; the shipped corpora when omitted."),
    model: ModelOpt = DEFAULT_MODEL,
    out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default: runs/profile-<model>)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Samples per forward pass."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Samples keep their first N tokens (truncations are counted)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N samples of each corpus."),
    top: int = typer.Option(5, "--top", help="Most input-sensitive layers listed per corpus."),
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
    """Profile how much each layer changes the residual stream, per corpus: mean, std, variance, ranking."""
    from lmxray.experiments.datasets import SHIPPED_CORPORA, parse_corpus_spec, read_corpus
    from lmxray.experiments.profile import ProfileConfig, profile_store, run_profile
    from lmxray.experiments.profile_report import finish_profile
    from lmxray.render.run_tables import print_profile
    from lmxray.views import profile_view

    if summary is not None:
        show_view(profile_view(summary), as_json, print_profile)
        return
    if top < 1:
        raise LmxrayError(f"--top must be at least 1, got {top}", "pass --top 5")
    config = ProfileConfig(batch_size=batch_size, max_tokens=max_tokens, limit=limit)
    runner = engine_for(engine, address, workers, gpus_per_worker, device_map, model, device, dtype, init, seed)
    specs = [parse_corpus_spec(s) for s in corpus] if corpus else list(SHIPPED_CORPORA.items())
    names = [name for name, _ in specs]
    if len(set(names)) != len(names):
        raise LmxrayError(f"corpus names repeat: {names}", "give every --corpus a different NAME")
    corpora = {name: read_corpus(name, path) for name, path in specs}
    folder, stats, _ = run_resumable(
        "profile", "samples", runner, corpora, config, profile_store, run_profile,
        lambda store, name: finish_profile(store, corpora, config, name, top),
        out_path=out_path, fresh=fresh, as_json=as_json)
    show_view(profile_view(folder, stats), as_json, print_profile)
