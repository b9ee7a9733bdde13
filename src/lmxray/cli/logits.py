"""`lmxray logits` (generation logit trace) and `lmxray lens` (logit lens at one position)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lmxray.cli.app import DEFAULT_MODEL, DeviceOpt, DtypeOpt, InitOpt, ModelOpt, SeedOpt, app, load_model, out
from lmxray.cli.files import check_output, check_output_suffix, is_trace_path, write_json
from lmxray.errors import LmxrayError


@app.command()
def logits(
    prompt: str = typer.Argument(..., help="The text to continue."),
    steps: int = typer.Option(8, "--steps", "-n", help="Tokens to generate."),
    top_k: int = typer.Option(5, "--top-k", "-k", help="Candidates shown per step."),
    temperature: float = typer.Option(0.0, "--temperature", "-t", help="0 = greedy; > 0 samples from softmax(logits / T)."),
    model: ModelOpt = DEFAULT_MODEL,
    out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the logit trace as JSON here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    init: InitOpt = "pretrained",
    seed: Annotated[int, typer.Option("--seed",
                                      help="Sampling seed (with --temperature > 0) and seed for --init random.")] = 0,
):
    """Generate from PROMPT step by step: top-k candidates with probabilities and raw logits, entropy, and a
    confident / uncertain / no idea flag per step. No KV cache: each step is a full forward pass."""
    from lmxray.probes.generate import check_generation_args, logit_trace
    from lmxray.render.probe_tables import print_logit_trace
    from lmxray.views import logits_view

    check_generation_args(steps, top_k, temperature)
    if out_path is not None:
        check_output_suffix(out_path, "JSON", (".json",))
        check_output(out_path)
    loaded = load_model(model, device, dtype, init, seed)
    view = logits_view(logit_trace(loaded, prompt, steps=steps, top_k=top_k, temperature=temperature, seed=seed))
    if out_path is not None:
        write_json(out_path, view.to_dict())
    if as_json:
        out.print_json(data=view.to_dict())
        return
    print_logit_trace(out, view)
    if out_path is not None:
        out.print(f"logit trace written to {out_path}")


@app.command()
def lens(
    source: str = typer.Argument(..., help="A prompt, or a trace file (.jsonl) written by `lmxray trace`."),
    position: int = typer.Option(-1, "--position", "-p", help="Position to read the lens at (negative counts from the end)."),
    top_k: int = typer.Option(5, "--top-k", "-k", help="Lens candidates per layer (prompts only; a file keeps its own)."),
    model: ModelOpt = DEFAULT_MODEL,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    init: InitOpt = "pretrained",
    seed: SeedOpt = 0,
):
    """Logit lens at a position: per layer the top-k tokens and the rank and probability of the final
    prediction, and the first layer where it becomes top-1."""
    from lmxray.capture.plan import CapturePlan
    from lmxray.render.probe_tables import print_lens
    from lmxray.trace.reader import read_trace
    from lmxray.views import lens_view

    if top_k < 1:
        raise LmxrayError(f"--top-k must be at least 1, got {top_k}", "pass --top-k 1 or more")
    if is_trace_path(source):
        trace, decode = read_trace(Path(source)), None
    else:
        loaded = load_model(model, device, dtype, init, seed)
        plan = CapturePlan(attention=False, row_stats=False, components=(), top_k=top_k, positions=(position,))
        trace, decode = loaded.trace(source, plan=plan, position=position), loaded.token_text
    view = lens_view(trace, position, decode)
    if as_json:
        out.print_json(data=view.to_dict())
        return
    print_lens(out, view)
