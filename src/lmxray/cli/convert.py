"""The convert command: a trace between JSONL and .safetensors, both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lmxray.cli.app import app, out


@app.command()
def convert(
    source: Path = typer.Argument(..., help="The trace to read (.jsonl or .safetensors)."),
    output: Path = typer.Argument(..., help="Where to write it in the other format (.safetensors or .jsonl)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Writing JSONL: leave out edges below this "
                                              "weight (default: the trace's capture threshold)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """Convert a trace between JSONL and .safetensors (by suffix). JSONL keeps only edges above its threshold."""
    from lmxray.trace.convert import convert_trace

    done = convert_trace(source, output, threshold=threshold)
    if as_json:
        out.print_json(data=done)
        return
    line = f"wrote {done['output']} ({done['format']}, {done['bytes']:,} bytes)"
    if done["format"] == "safetensors" and done["maps_threshold"] is not None:
        line += f"; attention maps hold only the JSONL's edges (weights >= {done['maps_threshold']:g})"
    if done["flow_records_dropped"]:
        line += f"; {done['flow_records_dropped']} flow records not carried (.safetensors holds the trace only)"
    out.print(line, markup=False, highlight=False, soft_wrap=True)
