"""The command line: parses arguments, calls the library, prints tables (or JSON with --json).

Each module registers its commands on the shared Typer ``app``; ``main`` turns
user errors into one line on stderr and exit code 2.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from lmxray.cli import core  # noqa: F401  (registers trace, compare)
from lmxray.cli import models  # noqa: F401  (registers models)
from lmxray.cli import convert  # noqa: F401  (registers convert)
from lmxray.cli import flow  # noqa: F401  (registers flow)
from lmxray.cli import heads, logits  # noqa: F401  (registers heads, logits, lens)
from lmxray.cli import sweep, profile  # noqa: F401  (registers sweep, profile)
from lmxray.cli import batch  # noqa: F401  (registers batch)
from lmxray.cli import plot  # noqa: F401  (registers plot, maps)
from lmxray.cli import report  # noqa: F401  (registers report)
from lmxray.cli import serve  # noqa: F401  (registers serve)
from lmxray.cli.app import DEBUG_FLAG, app, err, out
from lmxray.cli.flags import cli_message
from lmxray.errors import LmxrayError


def main(argv: list[str] | None = None) -> int:
    """Console entry point: user errors are one line on stderr and exit code 2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    args = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in args
    args = [a for a in args if a != DEBUG_FLAG]
    try:
        code = app(args=args, prog_name="lmxray", standalone_mode=False)  # a typer.Exit(n) comes back as n
        return code if isinstance(code, int) else 0
    except LmxrayError as e:
        if debug:
            raise
        err.print(f"error: {cli_message(e)}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted", markup=False)
        return 130
    except Exception as e:
        click_errors, click_exits = _click_exceptions()
        if isinstance(e, click_exits):
            return e.exit_code
        if isinstance(e, click_errors):
            if type(e).__name__ == "NoArgsIsHelpError":  # bare `lmxray`: the help, as with --help
                out.print(e.format_message(), markup=False, highlight=False)
                return 0
            if debug:
                raise
            err.print(f"error: {_usage_line(e)}", markup=False, highlight=False, soft_wrap=True)
            return 2
        if debug:
            raise
        err.print(f"internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
                  markup=False, highlight=False, soft_wrap=True)
        return 1


def _click_exceptions() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """Click's usage-error and exit classes: Typer >= 0.20 raises those of its vendored copy, older ones click's."""
    errors, exits = [], []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        errors.append(module.ClickException)
        if hasattr(module, "Exit"):
            exits.append(module.Exit)
    return tuple(errors), tuple(exits)


def _usage_line(e: Exception) -> str:
    """One line for a usage error (missing argument, unknown option, bad value) and where to look."""
    message = " ".join(e.format_message().split()).rstrip(".")
    ctx = getattr(e, "ctx", None)
    command = ctx.command_path if ctx is not None else "lmxray"
    return f"{message} — see '{command} --help'"


if __name__ == "__main__":
    sys.exit(main())
