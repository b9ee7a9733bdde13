"""Helpers for tests that drive `lmxray.cli.main`."""

from __future__ import annotations

from lmxray.cli import main


def run(capsys, *args):
    """Run the CLI with `args` (stringified); return (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_user_error(capsys, args, *words, out_file=None):
    """Exit code 2, one line on stderr naming the problem, no traceback, no output file."""
    code, _, err = run(capsys, *args)
    assert code == 2, f"exit code {code}, stderr: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), f"expected one error line, got: {err!r}"
    assert "Traceback" not in err
    for word in words:
        assert word.lower() in lines[0].lower(), f"{word!r} not in {lines[0]!r}"
    if out_file is not None:
        assert not out_file.exists(), f"{out_file} was written despite the error"
        assert not list(out_file.parent.glob(out_file.name + "*")), "a temporary file was left behind"
