"""`lmxray report PROMPT|TRACE --out report.html`: one self-contained HTML file that opens offline."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lmxray.cli.app import (DEFAULT_MODEL, DeviceOpt, DtypeOpt, ExpectTokensOpt, InitOpt, ModelOpt, TwinSeedOpt, app,
                            check_expect_tokens, check_seed, load_model, out, parse_expect, with_expect_tokens)
from lmxray.cli.files import check_output, check_output_suffix, is_trace_path
from lmxray.cli.plot import HEADS_HELP, LAYERS_HELP, parse_indices
from lmxray.errors import LmxrayError


@app.command()
def report(
    source: str = typer.Argument(..., metavar="PROMPT|TRACE", help="Text to trace, or a trace file (.jsonl)."),
    out_path: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write."),
    model: ModelOpt = DEFAULT_MODEL,
    expect: Optional[str] = typer.Option(None, "--expect", help='Expected attention as JSON: {"-1": [0, 4, 5]} (query -> key positions).'),
    expect_tokens: ExpectTokensOpt = None,
    position: int = typer.Option(-1, "--position", "-p", help="Prediction position (negative counts from the end)."),
    top_k: int = typer.Option(5, "--top-k", "-k", help="Candidates to show (and lens tokens per layer)."),
    layers: Optional[str] = typer.Option(None, "--layers", help="Rows of the map grid. " + LAYERS_HELP),
    heads: Optional[str] = typer.Option(None, "--heads", help=HEADS_HELP),
    twin: bool = typer.Option(False, "--twin", help="Put the random-init twin's maps beside the model's (needs a model)."),
    head_scores: bool = typer.Option(False, "--head-scores", help="Add head-pattern scores against random-init twins (needs a model)."),
    baseline_seeds: int = typer.Option(3, "--baseline-seeds", help="Random-init twins scored for --head-scores."),
    figure_format: str = typer.Option("png", "--figure-format", help="png or svg: how figures are embedded."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a line."),
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    init: InitOpt = "pretrained",
    seed: TwinSeedOpt = 0,
):
    """Write one offline HTML report: prediction, top-k, convergence, flow figure, head maps, logit lens."""
    from lmxray.render.report import build_report, write_report

    check_output_suffix(out_path, "an HTML report", (".html", ".htm"))
    check_output(out_path)
    if figure_format not in ("png", "svg"):
        raise LmxrayError(f"--figure-format {figure_format!r} is not png or svg", "pass --figure-format png or svg")
    if baseline_seeds < 1:
        raise LmxrayError(f"--baseline-seeds must be at least 1, got {baseline_seeds}", "pass --baseline-seeds 3")
    check_seed(seed, baseline_seeds if head_scores else 0)
    map_layers, map_heads = parse_indices(layers, "--layers"), parse_indices(heads, "--heads")
    expected = parse_expect(expect)
    check_expect_tokens(expect_tokens)
    from_file = is_trace_path(source)
    if from_file and (twin or head_scores):
        raise LmxrayError("--twin and --head-scores run a model, which a trace file does not carry",
                          "pass the prompt instead of the trace file")
    if from_file and (position != -1 or top_k != 5):
        option = "--position" if position != -1 else "--top-k"
        raise LmxrayError(f"{option} is used when tracing a prompt; a trace file keeps the position and "
                          "candidates it was traced with",
                          "pass the prompt instead of the trace file, or leave the option out")
    if from_file and (expect is not None or expect_tokens is not None):
        option = "--expect" if expect is not None else "--expect-tokens"
        raise LmxrayError(f"{option} is used when tracing a prompt; a trace file keeps the expected attention it was "
                          "traced with", f"pass the prompt instead of the trace file, or leave out {option}")
    if from_file:
        from lmxray.trace.reader import read_trace

        from lmxray.flow.result import is_flow_file, read_flow

        flow_result = read_flow(source) if is_flow_file(source) else None
        trace = flow_result.trace if flow_result is not None else read_trace(source)
        twin_trace, scores, decode = None, None, None
    else:
        from lmxray.pipelines.report import run_report

        flow_result = None
        loaded = load_model(model, device, dtype, init, seed)
        ran = run_report(loaded, source, expect=with_expect_tokens(loaded, source, expected, expect_tokens, position),
                         position=position, top_k=top_k, twin=twin, head_scores=head_scores,
                         baseline_seeds=baseline_seeds, seed=seed)
        trace, twin_trace, scores, decode = ran.trace, ran.twin, ran.head_scores, ran.decode
    html_text = build_report(trace, decode=decode, map_layers=map_layers, map_heads=map_heads, twin=twin_trace,
                             head_scores=scores, figure_format=figure_format, flow_result=flow_result)
    write_report(html_text, out_path)
    if as_json:
        out.print_json(data={"out": str(out_path), "source": "trace" if from_file else "prompt",
                             "bytes": len(html_text.encode("utf-8")), "head_scores": scores is not None,
                             "twin": twin_trace is not None,
                             "flow": flow_result is not None})
    else:
        out.print(f"report written to {out_path}")

