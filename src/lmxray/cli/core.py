"""Core commands: trace a prompt, compare two traces."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lmxray.cli.app import (DEFAULT_MODEL, DeviceOpt, DtypeOpt, ExpectTokensOpt, InitOpt, ModelOpt, SeedOpt, app,
                            check_expect_tokens, load_model, out, parse_expect, with_expect_tokens)
from lmxray.cli.files import TRACE_SUFFIXES, check_input, check_output, check_output_suffix
from lmxray.cli.plot import parse_indices
from lmxray.errors import LmxrayError
from lmxray.render import console as render_text


@app.command()
def trace(
    prompt: str = typer.Argument(..., help="The text to run through the model."),
    model: ModelOpt = DEFAULT_MODEL,
    expect: Optional[str] = typer.Option(None, "--expect", help='Expected attention as JSON: {"-1": [0, 4, 5]} (query -> key positions).'),
    expect_tokens: ExpectTokensOpt = None,
    position: int = typer.Option(-1, "--position", "-p", help="Prediction position (negative counts from the end)."),
    out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the trace here: .jsonl (exchange) or .safetensors (dense, fast)."),
    per_head: bool = typer.Option(False, "--per-head", help="Also keep (and write) per-head attention."),
    layers: Optional[str] = typer.Option(None, "--layers", help="Capture only these layers, comma-separated (negative count from the end), e.g. 0,15,-1."),
    heads: Optional[str] = typer.Option(None, "--heads", help="With --per-head: keep only these heads, e.g. 0,4,8."),
    top_k: int = typer.Option(5, "--top-k", "-k", help="Candidates to show and record."),
    threshold: float = typer.Option(0.01, "--threshold", help="Edges below this weight are not written."),
    lens_all: bool = typer.Option(False, "--lens-all", help="Logit lens at every position, not only the prediction position."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    init: InitOpt = "pretrained",
    seed: SeedOpt = 0,
):
    """Trace PROMPT: prediction, top-k, convergence table at the prediction position, summary metrics."""
    from lmxray.capture.plan import CapturePlan
    from lmxray.views import trace_view

    expected = parse_expect(expect)
    check_expect_tokens(expect_tokens)
    if out_path is not None:
        check_output_suffix(out_path, "a trace (.jsonl or .safetensors)", TRACE_SUFFIXES)
        target = check_output(out_path)
    if heads is not None and not per_head:
        raise LmxrayError("--heads chooses among per-head maps", "add --per-head, or drop --heads")
    layer_list, head_list = parse_indices(layers, "--layers"), parse_indices(heads, "--heads")
    plan = CapturePlan(per_head=per_head, top_k=top_k, threshold=threshold, lens_positions=None if lens_all else (),
                       layers=None if layer_list is None else tuple(layer_list),
                       heads=None if head_list is None else tuple(head_list))
    loaded = load_model(model, device, dtype, init, seed)
    expected = with_expect_tokens(loaded, prompt, expected, expect_tokens, position)
    result = loaded.trace(prompt, plan=plan, position=position, expect=expected)
    view = trace_view(result, out_path)
    if out_path is not None:
        result.save(target)  # a symlink's target: the link stays
    if as_json:
        out.print_json(data=view.to_dict())
    else:
        render_text.print_trace(out, view)


@app.command()
def compare(
    a: Path = typer.Argument(..., help="First trace (e.g. the correct prediction)."),
    b: Path = typer.Argument(..., help="Second trace (e.g. the wrong prediction)."),
    align: str = typer.Option("start", "--align", help="Per-layer JS over key positions of different counts: start "
                              "(position 0 with 0) or end (the prediction positions together)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
):
    """Compare two traces: summed and length-normalised metrics, then per layer JS divergence and first-position share."""
    from lmxray.cli.app import err
    from lmxray.trace.reader import read_trace
    from lmxray.views import compare_view

    if align not in ("start", "end"):
        raise LmxrayError(f"--align {align!r} is not start or end", "pass --align start or --align end")
    ta, tb = read_trace(check_input(a)), read_trace(check_input(b))
    view = compare_view(ta, tb, str(a), str(b), align)
    for line in ((view.models if as_json else None), view.warning):  # tables say it on stdout, as a note
        if line is not None:
            err.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)
    if as_json:
        out.print_json(data=view.to_dict())
    else:
        render_text.print_compare(out, view)
