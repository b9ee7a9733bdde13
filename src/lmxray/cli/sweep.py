"""`lmxray sweep`: prompt-pair attention divergence by layer, resumable, with a category summary."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from lmxray.cli.app import DEFAULT_MODEL, DeviceOpt, DtypeOpt, InitOpt, ModelOpt, SeedOpt, app, load_model, out
from lmxray.cli.runs import (FreshOpt, JsonOpt, SummaryOpt, print_run_json, print_run_stats, progress_bar,
                             run_folder)


@app.command()
def sweep(
    dataset: Optional[Path] = typer.Argument(None, help="Pairs as JSONL or CSV (id, category, intended, contradictory[, expected, expected_positions]), or a shipped set: contexts (the default) or length-matched."),
    model: ModelOpt = DEFAULT_MODEL,
    out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default: runs/sweep-<model>)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Pairs per forward pass."),
    threshold: float = typer.Option(0.05, "--threshold", help="JS divergence above this marks the first divergence layer."),
    align: str = typer.Option("tokens", "--align", help="tokens: shared tokens matched one to one, each differing span one unit; start: position 0 with position 0; end: prediction positions lined up."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N pairs."),
    fresh: FreshOpt = False,
    summary: SummaryOpt = None,
    as_json: JsonOpt = False,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    init: InitOpt = "pretrained",
    seed: SeedOpt = 0,
):
    """Trace matched prompt pairs and compare the prediction position's attention layer by layer."""
    from lmxray.experiments.store import read_summary
    from lmxray.experiments.datasets import pair_source, read_pairs
    from lmxray.experiments.sweep import SweepConfig, run_sweep, sweep_store
    from lmxray.experiments.sweep_report import finish_sweep

    if summary is not None:
        show_summary(read_summary(summary, "sweep"), summary, as_json)
        return
    config = SweepConfig(batch_size=batch_size, align=align, threshold=threshold, limit=limit)
    pairs = read_pairs(pair_source(dataset))
    key, folder = run_folder("sweep", model, init, seed, out_path)
    store = sweep_store(folder, key, config)
    store.check(fresh)
    with store:  # one run per folder: a second is refused at once, naming this one's pid
        loaded = load_model(model, device, dtype, init, seed)
        with progress_bar("pairs") as progress:
            stats = run_sweep(loaded, pairs, store, config, fresh=fresh, progress=progress)
        chosen = pairs[: config.limit] if config.limit else pairs
        result = finish_sweep(store, chosen, config.threshold, loaded.info.name)
    if not as_json:
        print_run_stats(stats, "pairs")
    show_summary(result, folder, as_json, stats)


def show_summary(summary: dict, folder: Path, as_json: bool, stats: dict | None = None) -> None:
    from lmxray.errors import LmxrayError
    from lmxray.experiments.sweep_report import SUMMARY_SCHEMA, format_num, length_line

    if summary.get("schema") != SUMMARY_SCHEMA:
        raise LmxrayError(f"{folder} holds a sweep summary of another lmxray version (no length split)",
                          f"rerun the sweep with --out {folder} --fresh")
    if as_json:
        print_run_json(summary, folder, stats)
        return
    table = Table(title=f"sweep of {summary['pairs']} pairs on {summary['model']} ({summary['layers']} layers, "
                        f"--align {summary['align']}, JS threshold {summary['threshold']:g}); "
                        "means (95% intervals and each category's length split in summary.md)",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in ("category", "n", "peak L", "first", "never", "area", "JS", "BOS peak", "hits"):
        table.add_column(name, justify="left" if name == "category" else "right", no_wrap=True)
    for r in summary["categories"] + summary["length_groups"]:
        table.add_row(r["category"], str(r["n_pairs"]), format_num(r["peak_layer"], 1),
                      format_num(r["first_layer"], 1), str(r["n_never"]), format_num(r["area"], 3),
                      format_num(r["mean_js"], 4), f"L{r['bottleneck_layer']} {format_num(r['bottleneck_share'], 2)}",
                      f"{r['n_hit_intended']}/{r['n_expected']}" if r["n_expected"] else "-",
                      end_section=r is summary["categories"][-2] or r is summary["categories"][-1])
    out.print(table)
    out.print(length_line(summary["length_split"]))
    out.print(f"run folder: {folder} (summary.md, pairs/layers/summary/bos_profile .parquet + .csv, figures)")
