"""The command line: parses arguments, calls the library, prints tables (or JSON with --json)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from lmxray.render import console as render_text
from lmxray.errors import LmxrayError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="An X-ray for causal language models: trace a forward pass exactly, compare traces.")
out = Console()
err = Console(stderr=True)
DEBUG_FLAG = "--debug"  # accepted anywhere on the command line: show tracebacks for errors


@app.callback(epilog="Add --debug anywhere to see tracebacks for errors.")
def _main():
    """An X-ray for causal language models."""


def _load(model: str, device: str, dtype: str, init: str, seed: int):
    from lmxray.models.loader import load

    with err.status(f"loading {model}...") as status:
        def progress(message: str) -> None:
            err.print(f"[dim]{message}[/dim]")
            status.update(message)

        return load(model, device=device, dtype=dtype, init=init, seed=seed, progress=progress)


def _parse_expect(text: str | None) -> dict:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise LmxrayError(f"--expect is not valid JSON ({e.msg} at char {e.pos})",
                          'write it like \'{"-1": [0, 4, 5]}\'') from None
    if not isinstance(value, dict):
        raise LmxrayError("--expect must be a JSON object", 'write it like \'{"-1": [0, 4, 5]}\'')
    return value


@app.command()
def trace(
    prompt: str = typer.Argument(..., help="The text to run through the model."),
    model: str = typer.Option("smollm2", "--model", "-m", help="Built-in alias, .gguf file, HF directory, cached hub id, or random:SPEC."),
    expect: Optional[str] = typer.Option(None, "--expect", help='Expected attention as JSON: {"-1": [0, 4, 5]} (query -> key positions).'),
    position: int = typer.Option(-1, "--position", "-p", help="Prediction position (negative counts from the end)."),
    out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the JSONL trace here."),
    per_head: bool = typer.Option(False, "--per-head", help="Also keep (and write) per-head attention."),
    top_k: int = typer.Option(5, "--top-k", "-k", help="Candidates to show and record."),
    threshold: float = typer.Option(0.01, "--threshold", help="Edges below this weight are not written."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:N]."),
    dtype: str = typer.Option("auto", "--dtype", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16."),
    init: str = typer.Option("pretrained", "--init", help="pretrained, or random for the random-init twin."),
    seed: int = typer.Option(0, "--seed", help="Seed for --init random."),
):
    """Trace PROMPT: prediction, top-k, convergence table at the prediction position, summary metrics."""
    from lmxray.analysis.convergence import convergence, summarize
    from lmxray.capture.plan import CapturePlan
    from lmxray.trace.writer import check_writable

    expected = _parse_expect(expect)
    if out_path is not None:
        check_writable(out_path)
    plan = CapturePlan(per_head=per_head, top_k=top_k, threshold=threshold)
    loaded = _load(model, device, dtype, init, seed)
    result = loaded.trace(prompt, plan=plan, position=position, expect=expected)
    rows, summary = convergence(result), summarize(result)
    if out_path is not None:
        result.save(out_path)
    if as_json:
        out.print_json(data=render_text.trace_json(result, rows, summary, out_path))
    else:
        render_text.print_trace(out, result, rows, summary, out_path)


@app.command()
def compare(
    a: Path = typer.Argument(..., help="First trace (e.g. the correct prediction)."),
    b: Path = typer.Argument(..., help="Second trace (e.g. the wrong prediction)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
):
    """Compare two traces side by side: sink mass, active and unexpected positions, entropy, confidence."""
    from lmxray.analysis.convergence import compare as compare_traces
    from lmxray.trace.reader import read_trace

    ta, tb = read_trace(a), read_trace(b)
    rows = compare_traces(ta, tb)
    if as_json:
        out.print_json(data={"a": str(a), "b": str(b), "metrics": [
            {"metric": m, "a": va, "b": vb} for m, va, vb in rows]})
    else:
        render_text.print_compare(out, str(a), str(b), ta, tb, rows)


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
    """List built-in model aliases, supported architectures and the cache location."""
    from lmxray.models.adapters import ADAPTERS
    from lmxray.models.builtin import BUILTINS, is_installed
    from lmxray.models.gguf_cache import cache_dir

    data = render_text.models_data(BUILTINS, is_installed, ADAPTERS, cache_dir())
    if as_json:
        out.print_json(data=data)
    else:
        render_text.print_models(out, data)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: user errors are one line on stderr and exit code 2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    args = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in args
    args = [a for a in args if a != DEBUG_FLAG]
    try:
        app(args=args, standalone_mode=False)
        return 0
    except LmxrayError as e:
        if debug:
            raise
        err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted", markup=False)
        return 130
    except Exception as e:  # click usage errors carry their own exit code
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            return e.exit_code
        if isinstance(e, click.exceptions.Exit):
            return e.exit_code
        if debug:
            raise
        err.print(f"internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
                  markup=False, highlight=False, soft_wrap=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
