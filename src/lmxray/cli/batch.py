"""`lmxray batch`: one summary row per prompt (prediction, confidence, convergence, first-token share), resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from lmxray.cli.app import DEFAULT_MODEL, DeviceOpt, DtypeOpt, InitOpt, ModelOpt, SeedOpt, app, out
from lmxray.cli.runs import FreshOpt, JsonOpt, SummaryOpt
from lmxray.cli.scale import AddressOpt, DeviceMapOpt, EngineOpt, GpusOpt, WorkersOpt, engine_for, run_resumable

SHOWN = 20  # prompts listed in the printed table; all of them are in prompts.csv


@app.command()
def batch(
    prompts: Optional[Path] = typer.Argument(None, help="A .txt (one prompt a line), or rows with 'text' and an optional 'id': a JSONL, CSV or Parquet file, a folder of them, or a datasets folder."),
    out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default: runs/batch-<model>)."),
    model: ModelOpt = DEFAULT_MODEL,
    batch_size: int = typer.Option(8, "--batch-size", help="Prompts per forward pass."),
    traces: Optional[str] = typer.Option(None, "--traces", help="Also write each prompt's full trace to traces/: jsonl or safetensors."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N prompts."),
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
    """Trace every prompt of PROMPTS and keep one summary row each (prompts.*, layers.*, summary.json)."""
    from lmxray.errors import LmxrayError
    from lmxray.experiments.batch import BatchConfig, batch_store, finish_batch, run_batch
    from lmxray.experiments.datasets import read_prompts
    from lmxray.experiments.store import read_summary

    if summary is not None:
        show(read_summary(summary, "batch"), summary, as_json)
        return
    if prompts is None:
        raise LmxrayError("no prompts given", "pass a prompt file: lmxray batch PROMPTS --out DIR")
    config = BatchConfig(batch_size=batch_size, traces=traces, limit=limit)
    runner = engine_for(engine, address, workers, gpus_per_worker, device_map, model, device, dtype, init, seed)
    chosen = read_prompts(prompts)
    folder, stats, result = run_resumable(
        "batch", "prompts", runner, chosen, config, batch_store, run_batch,
        lambda store, name: finish_batch(store, chosen, config, name),
        out_path=out_path, fresh=fresh, as_json=as_json)
    show(result, folder, as_json, stats)


def show(summary: dict, folder: Path, as_json: bool, stats: dict | None = None) -> None:
    """The summary as JSON, or the first prompts' rows and the means."""
    import pyarrow.parquet as pq

    if as_json:
        out.print_json(data={"run": str(folder), **({"run_stats": stats} if stats else {}), **summary})
        return
    rows = pq.read_table(Path(folder) / "prompts.parquet").slice(0, SHOWN).to_pylist()
    table = Table(title=f"batch of {summary['prompts']} prompts on {summary['model']} ({summary['layers']} layers)",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in ("id", "tokens", "prediction", "confidence", "first-token share", "entropy / max"):
        table.add_column(name, justify="left" if name in ("id", "prediction") else "right", no_wrap=True)
    for r in rows:
        table.add_row(r["id"], str(r["n_tokens"]), repr(r["prediction"]), f"{r['confidence']:.3f}",
                      f"{r['sink_share']:.3f}", f"{r['entropy_norm']:.3f}")
    out.print(table)
    more = summary["prompts"] - len(rows)
    out.print(f"mean confidence {summary['mean_confidence']:.3f}, first-token share {summary['mean_sink_share']:.3f}"
              + (f"; {more} more prompts in prompts.csv" if more > 0 else ""))
    out.print(f"run folder: {folder} (prompts/layers .parquet + .csv, summary.json"
              + (", traces/" if summary.get("traces") else "") + ")")
