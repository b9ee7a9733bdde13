"""``lmxray flow``: which source tokens fed the residual stream at a position, and who pushed the logit."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lmxray.cli.app import DEFAULT_MODEL, DeviceOpt, DtypeOpt, InitOpt, ModelOpt, SeedOpt, app, load_model, out
from lmxray.cli.files import JSONL_SUFFIXES, check_output, check_output_suffix


@app.command()
def flow(
    prompt: str = typer.Argument(..., help="The text to run through the model."),
    model: ModelOpt = DEFAULT_MODEL,
    position: int = typer.Option(-1, "--position", "-p", help="Position to look at (negative counts from the end)."),
    token: Optional[list[str]] = typer.Option(None, "--token", help="Also attribute this token's logit (one token; repeatable)."),
    versus: Optional[str] = typer.Option(None, "--vs", help="Contrastive attribution: the logit difference of the "
                                         "first --token (or the prediction) minus this token's logit, per source."),
    group: Optional[str] = typer.Option(None, "--group", help='Sum sources into groups: "words", or token ranges like "0-2,3,4-6".'),
    top_k: int = typer.Option(3, "--top-k", "-k", help="Sources shown per layer."),
    out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the trace with flow records here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    init: InitOpt = "pretrained",
    seed: SeedOpt = 0,
):
    """Split the residual stream at a position into per-source contributions (attention and MLP), layer by layer,
    and attribute the predicted token's logit (or, with --token A --vs B, logit A - logit B) to the sources.
    The first position (the attention sink) is always reported apart from the content sources."""
    from lmxray.errors import LmxrayError
    from lmxray.flow import flow as run_flow
    from lmxray.render import flow_console
    from lmxray.views import flow_view

    if top_k < 1:
        raise LmxrayError(f"--top-k must be at least 1, got {top_k}", "pass --top-k 1 or more")
    if group is not None and not group.strip():
        raise LmxrayError("--group is empty", 'pass --group words or token ranges like "0-2,3"')
    if out_path is not None:
        check_output_suffix(out_path, "a JSONL trace with flow records", JSONL_SUFFIXES)
        target = check_output(out_path)
    loaded = load_model(model, device, dtype, init, seed)
    result = run_flow(loaded, prompt, position=position, tokens=tuple(token or ()), versus=versus,
                      groups=group)
    if out_path is not None:
        result.save(target)  # a symlink's target: the link stays
    view = flow_view(result, out_path)
    if as_json:
        out.print_json(data=view.to_dict())
    else:
        flow_console.print_flow(out, view, top_k)
