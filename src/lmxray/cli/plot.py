"""Figure commands: `plot` (flow figure or map grid from a trace file) and `maps` (map grid from a prompt)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

from lmxray.cli.app import DEFAULT_MODEL, DeviceOpt, DtypeOpt, InitOpt, ModelOpt, TwinSeedOpt, app, load_model, out
from lmxray.errors import LmxrayError

LAYERS_HELP = "Model layers, comma-separated (negative count from the end), e.g. 0,15,-1."
HEADS_HELP = "Heads for the map grid, comma-separated, e.g. 0,4,8 (default: at most 3, evenly spread)."
VMAX_HELP = "Top of the maps' shared colour scale: a probability (default 1) or 'auto' (largest weight shown)."


def parse_indices(text: str | None, option: str) -> list[int] | None:
    """'0,15,-1' (or '0, 15, -1', '0 15 -1') -> [0, 15, -1]; None stays None; an empty item ('1,,2') is an error."""
    if text is None:
        return None
    if not text.strip():
        raise LmxrayError(f"{option} is empty", f"write it like {option} 0,15,-1")
    parts = re.split(r"\s*,\s*|\s+", text.strip())
    if "" in parts:
        raise LmxrayError(f"{option} {text!r} has an empty item", f"write it like {option} 0,15,-1")
    try:
        return [int(part) for part in parts]
    except ValueError:
        raise LmxrayError(f"{option} {text!r} is not a comma-separated list of integers",
                          f"write it like {option} 0,15,-1") from None


def parse_vmax(text: str) -> float | None:
    """'auto' -> None (the largest weight shown); else a positive number."""
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise LmxrayError(f"--vmax {text!r} is not a number", "pass --vmax 1, --vmax 0.5 or --vmax auto") from None
    if not 0 < value < float("inf"):
        raise LmxrayError(f"--vmax must be > 0 and finite, got {text}", "pass --vmax 1, --vmax 0.5 or --vmax auto")
    return value


def checked_figure_path(path: Path) -> Path:
    """The output path, refused early when its format or directory is wrong."""
    from lmxray.cli.files import check_output
    from lmxray.render.figures import figure_format

    check_output(path)  # first: a device or FIFO is named as such whatever its name
    figure_format(path)
    return path


def _report(kind: str, path: Path, as_json: bool, **details) -> None:
    if as_json:
        out.print_json(data={"figure": kind, "out": str(path), **details})
    else:
        out.print(f"{kind} written to {path}")


@app.command()
def plot(
    trace_path: Path = typer.Argument(..., metavar="TRACE", help="A trace file (lmxray's or the rocmforge tracer's), "
                                      "or a sweep run folder with --pair."),
    out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="fig.png or fig.svg (default: next to TRACE)."),
    maps: bool = typer.Option(False, "--maps", help="Draw the per-head attention-map grid (needs --per-head traces)."),
    layers: Optional[str] = typer.Option(None, "--layers", help=LAYERS_HELP),
    heads: Optional[str] = typer.Option(None, "--heads", help=HEADS_HELP),
    vmax: str = typer.Option("1", "--vmax", help=VMAX_HELP),
    min_share: float = typer.Option(0.02, "--min-share", help="Flow edges lighter than this share of the heaviest are not drawn."),
    group: Optional[int] = typer.Option(None, "--group", help="Flow graph: consecutive layers per band (edge weight "
                                        "averaged over them; default: at most 8 bands; 1 draws every layer)."),
    graph: bool = typer.Option(False, "--graph", help="On a flow trace (lmxray flow --out): draw the attention flow graph "
                               "instead of the per-source stacked bars."),
    pair: Optional[str] = typer.Option(None, "--pair", help="With a sweep run folder: draw this pair's depth profile "
                                       "(JS and first-position share per layer)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a line."),
):
    """Draw TRACE: the attention flow graph with the convergence bar, or with --maps the per-head map grid.
    A flow trace (lmxray flow --out) gives stacked bars of per-source contributions per layer;
    a sweep run folder with --pair ID gives that pair's depth profile."""
    from lmxray.flow.result import is_flow_file
    from lmxray.trace.reader import read_trace

    if pair is not None or trace_path.is_dir():
        return _save_pair(trace_path, pair, out_path, as_json, maps or graph or layers is not None or heads is not None)

    bars = not maps and not graph and is_flow_file(trace_path)
    if out_path is None:
        out_path = trace_path.with_suffix(".maps.png" if maps else ".bars.png" if bars else ".flow.png")
    checked_figure_path(out_path)
    layer_list, head_list, top = parse_indices(layers, "--layers"), parse_indices(heads, "--heads"), parse_vmax(vmax)
    if heads is not None and not maps:
        raise LmxrayError("--heads picks panels of the map grid", "add --maps, or leave out --heads")
    from lmxray.cli.files import check_input

    if bars and layers is not None:
        raise LmxrayError("--layers picks layers of the flow graph; the stacked bars of a flow trace show every layer",
                          "leave out --layers, or add --graph for the attention flow graph")
    if maps and graph:
        raise LmxrayError("--maps and --graph draw different figures", "pass one of them")
    if bars:
        return _save_bars(check_input(trace_path), out_path, as_json)
    trace = read_trace(check_input(trace_path))
    if maps:
        _save_maps(trace, None, layer_list, head_list, top, out_path, as_json)
    else:
        from lmxray.analysis.convergence import convergence
        from lmxray.render.figures import save_figure
        from lmxray.render.flow_figure import flow_figure

        fig = flow_figure(trace, convergence(trace), layers=layer_list, min_share=min_share, group=group)
        save_figure(fig, out_path)
        _report("flow figure", out_path, as_json, position=trace.position, layers=layer_list or trace.layers)


def _save_pair(folder: Path, pair: str | None, out_path: Path | None, as_json: bool, other: bool) -> None:
    from lmxray.experiments.pair_depth import read_pair_depth
    from lmxray.render.figures import save_figure
    from lmxray.render.pair_figure import pair_depth_figure

    if pair is None:
        raise LmxrayError(f"{folder} is a folder; plot draws a folder only as a sweep pair's depth profile",
                          "add --pair ID (an id from the run's pairs.csv), or pass a trace file")
    if not folder.is_dir():
        raise LmxrayError(f"--pair reads a sweep run folder, and {folder} is not a folder",
                          "pass the --out folder of an `lmxray sweep` run")
    if other:
        raise LmxrayError("--maps, --graph, --layers and --heads draw traces, not a sweep pair",
                          "leave them out with --pair")
    if out_path is None:
        out_path = folder / ("pair-" + re.sub(r"[^A-Za-z0-9_.-]", "_", pair) + ".png")
    checked_figure_path(out_path)
    depth = read_pair_depth(folder, pair)
    save_figure(pair_depth_figure(depth), out_path)
    _report("pair depth profile", out_path, as_json, pair=pair, category=depth.category,
            peak_layer=int(depth.js.argmax()), layers=len(depth.js))


def _save_bars(path: Path, out_path: Path, as_json: bool) -> None:
    from lmxray.flow.result import read_flow
    from lmxray.render.figures import save_figure
    from lmxray.render.flow_bars import flow_bars_figure

    flow = read_flow(path)
    save_figure(flow_bars_figure(flow), out_path)
    contrast = flow.contrast
    _report("flow bars", out_path, as_json, position=flow.position, sources=len(flow.sources),
            contrast=None if contrast is None else contrast.text)


@app.command("maps")
def maps_command(
    prompt: str = typer.Argument(..., help="The text to run through the model."),
    model: ModelOpt = DEFAULT_MODEL,
    layers: Optional[str] = typer.Option(None, "--layers", help=LAYERS_HELP + " Default: 3, evenly spread."),
    heads: Optional[str] = typer.Option(None, "--heads", help=HEADS_HELP),
    twin: bool = typer.Option(False, "--twin", help="Put the random-init twin's maps (same config and tokenizer) beside them."),
    vmax: str = typer.Option("1", "--vmax", help=VMAX_HELP),
    out_path: Path = typer.Option(Path("maps.png"), "--out", "-o", help="maps.png or maps.svg."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a line."),
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    init: InitOpt = "pretrained",
    seed: TwinSeedOpt = 0,
):
    """Per-head attention maps of PROMPT: a grid of layers x heads sharing one colour scale."""
    from lmxray.capture.plan import CapturePlan
    from lmxray.probes.twins import random_twin
    from lmxray.render.attention_maps import DEFAULT_GRID
    from lmxray.render.figures import sample_indices

    checked_figure_path(out_path)
    layer_list, head_list, top = parse_indices(layers, "--layers"), parse_indices(heads, "--heads"), parse_vmax(vmax)
    loaded = load_model(model, device, dtype, init, seed)
    n_layers, n_heads = loaded.info.n_layers, loaded.info.n_heads
    plan = CapturePlan(
        layers=tuple(layer_list or sample_indices(n_layers, DEFAULT_GRID)), per_head=True,
        heads=tuple(head_list or sample_indices(n_heads, DEFAULT_GRID)), attention=False, row_stats=False,
        components=(), lens=False, top_k=1)
    trace = loaded.trace(prompt, plan=plan)
    twin_trace = random_twin(loaded, seed).trace(prompt, plan=plan) if twin else None
    _save_maps(trace, twin_trace, list(plan.layers), list(plan.heads), top, out_path, as_json)


def _save_maps(trace, twin, layers, heads, top, out_path: Path, as_json: bool) -> None:
    """The map grid of the chosen panels on one scale: ``top``, or (None) the largest weight over every panel."""
    from lmxray.render.attention_maps import attention_map_grid, select_maps
    from lmxray.render.figures import save_figure
    from lmxray.views import head_maps_view

    selection = select_maps(trace, layers, heads)
    views = [head_maps_view(t, layer, selection.heads, vmax=top)
             for t in ([trace] if twin is None else [trace, twin]) for layer in selection.layers]
    scale = max(v.vmax for v in views)  # each view's top is ``top`` when given
    save_figure(attention_map_grid(trace, selection, twin=twin, vmax=scale), out_path)
    _report("attention maps", out_path, as_json, layers=[v.layer for v in views[:len(selection.layers)]],
            heads=views[0].heads, twin=None if twin is None else twin.model.name, vmax=scale)
