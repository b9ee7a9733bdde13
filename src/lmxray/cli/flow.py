"""``lmxray flow``: which source tokens fed the residual stream at a position, and who pushed the logit.

``--method exact`` (the default) decomposes the residual stream exactly; ``--method routes`` builds the
information-flow routes graph (Ferrando & Voita, 2024) into the prediction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lmxray.cli.app import DEFAULT_MODEL, DeviceOpt, DtypeOpt, InitOpt, ModelOpt, SeedOpt, app, load_model, out
from lmxray.cli.files import JSONL_SUFFIXES, check_output, check_output_suffix, write_json

METHODS = ("exact", "routes")


@app.command()
def flow(
    prompt: str = typer.Argument(..., help="The text to run through the model."),
    model: ModelOpt = DEFAULT_MODEL,
    method: str = typer.Option("exact", "--method", help="exact: split the residual stream into per-source "
                               "contributions; routes: the information-flow routes graph into the prediction."),
    position: int = typer.Option(-1, "--position", "-p", help="Position to look at (negative counts from the end)."),
    token: Optional[list[str]] = typer.Option(None, "--token", help="Also attribute this token's logit (one token; repeatable)."),
    versus: Optional[str] = typer.Option(None, "--vs", help="Contrastive attribution: the logit difference of the "
                                         "first --token (or the prediction) minus this token's logit, per source."),
    group: Optional[str] = typer.Option(None, "--group", help='Sum sources into groups: "words", or token ranges like "0-2,3,4-6".'),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="routes: the least importance an edge needs "
                                              "to stay in the graph, in (0, 1] (default 0.04)."),
    top_k: int = typer.Option(3, "--top-k", "-k", help="Sources (routes: edges) shown per layer."),
    out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the trace with flow records here "
                                            "(routes: the graph as JSON)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    init: InitOpt = "pretrained",
    seed: SeedOpt = 0,
):
    """Split the residual stream at a position into per-source contributions (attention and MLP), layer by layer,
    and attribute the predicted token's logit (or, with --token A --vs B, logit A - logit B) to the sources.
    The first position (the attention sink) is always reported apart from the content sources.
    With --method routes: the edges (attention per head and summed, MLP, residual) whose importance reaches
    --threshold on the routes into the prediction at --position."""
    from lmxray.errors import LmxrayError
    from lmxray.flow import flow as run_flow
    from lmxray.render import flow_console
    from lmxray.views import flow_view

    if method not in METHODS:
        raise LmxrayError(f"unknown --method {method!r}", "pass --method exact or --method routes")
    if top_k < 1:
        raise LmxrayError(f"--top-k must be at least 1, got {top_k}", "pass --top-k 1 or more")
    if method == "routes":
        exact_only = {"--token": token, "--vs": versus, "--group": group}
        for flag, value in exact_only.items():
            if value is not None and value != []:
                raise LmxrayError(f"{flag} applies to --method exact only", f"drop {flag}, or drop --method routes")
        _routes(prompt, model, position, threshold, top_k, out_path, as_json, device, dtype, init, seed)
        return
    if threshold is not None:
        raise LmxrayError("--threshold applies to --method routes only", "drop --threshold, or add --method routes")
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


def _routes(prompt: str, model: str, position: int, threshold: float | None, top_k: int, out_path: Path | None,
            as_json: bool, device: str, dtype: str, init: str, seed: int) -> None:
    """``lmxray flow --method routes``: build the routes graph, print it (or its JSON), write it with --out."""
    from lmxray.flow.routes import DEFAULT_THRESHOLD, check_threshold, routes
    from lmxray.render.routes_console import print_routes
    from lmxray.views.routes import routes_view

    threshold = check_threshold(DEFAULT_THRESHOLD if threshold is None else threshold)
    if out_path is not None:
        check_output_suffix(out_path, "a JSON routes graph", (".json",))
        check_output(out_path)
    loaded = load_model(model, device, dtype, init, seed)
    view = routes_view(routes(loaded, prompt, position=position, threshold=threshold), out_path)
    if out_path is not None:
        write_json(out_path, view.to_dict())
    if as_json:
        out.print_json(data=view.to_dict())
    else:
        print_routes(out, view, top_k)
