"""The Typer app and what every command shares: consoles, model loading, option parsing."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.console import Console

from lmxray.errors import LmxrayError
from lmxray.models.builtin import DEFAULT_MODEL  # noqa: F401  (re-exported: the default of --model)

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="An X-ray for causal language models: trace a forward pass exactly, compare traces.")
out = Console()
err = Console(stderr=True)
DEBUG_FLAG = "--debug"  # accepted anywhere on the command line: show tracebacks for errors

# The options of every command that loads a model, declared once. Use them as
# ``model: ModelOpt = DEFAULT_MODEL, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
# init: InitOpt = "pretrained", seed: SeedOpt = 0`` and pass them to ``load_model``.
ModelOpt = Annotated[str, typer.Option("--model", "-m",
                                       help="Built-in alias, .gguf file, HF directory, cached hub id, or random:SPEC.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda[:N].")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16.")]
InitOpt = Annotated[str, typer.Option("--init", help="pretrained, or random for the random-init twin.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for --init random.")]
ExpectTokensOpt = Annotated[Optional[str], typer.Option(
    "--expect-tokens", help='Expected attention at the prediction position, named by prompt text and resolved through '
    'the tokenizer: "<first>, capital, Myanmar" (comma-separated words; WORD#2 for the 2nd occurrence; <first> is '
    'position 0).')]
# --seed of the commands with a --twin (plot's maps, report), which also seeds that twin.
TwinSeedOpt = Annotated[int, typer.Option("--seed", help="Seed for --init random and for the twin of --twin.")]


@app.callback(epilog="Add --debug anywhere to see tracebacks for errors.")
def _main():
    """An X-ray for causal language models."""


SEED_MAX = 2**63 - 1  # torch seeds are 64-bit


def check_seed(seed: int, twins: int = 0) -> None:
    """Refuse a --seed (and the seeds SEED+1..SEED+twins of random-init twins) that torch cannot take."""
    if twins > SEED_MAX:
        raise LmxrayError(f"--baseline-seeds {twins} is more twins than there are seeds",
                          "pass e.g. --baseline-seeds 3")
    if not 0 <= seed <= SEED_MAX - twins:
        raise LmxrayError(f"--seed {seed} is out of range" + (f" with {twins} twins after it" if twins else ""),
                          f"pass a seed in 0..{SEED_MAX - twins}")


def load_model(model: str, device: str, dtype: str, init: str, seed: int):
    from lmxray.models.loader import load

    check_seed(seed)

    with err.status(f"loading {model}...") as status:
        def progress(message: str) -> None:
            err.print(f"[dim]{message}[/dim]")
            status.update(message)

        return load(model, device=device, dtype=dtype, init=init, seed=seed, progress=progress)


def parse_expect(text: str | None) -> dict:
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


def check_expect_tokens(text: str | None) -> None:
    """Refuse a malformed ``--expect-tokens`` before any model is loaded."""
    if text is not None:
        from lmxray.models.expect_tokens import parse_items

        parse_items(text)


def with_expect_tokens(model, prompt: str, expected: dict, text: str | None, position: int) -> dict:
    """``--expect`` joined with ``--expect-tokens`` resolved on ``model``'s tokens of ``prompt``."""
    if text is None:
        return expected
    from lmxray.models.expect_tokens import expect_from_tokens, merge_expected

    extra = expect_from_tokens(model, prompt, text, position)
    return merge_expected(expected, extra, len(model.encode(prompt)))
