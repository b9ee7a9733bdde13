"""openapi.json: the API's schema generated from the pydantic models and routes, checked into the package.

    python -m lmxray.server.openapi --write    # regenerate src/lmxray/server/openapi.json
    python -m lmxray.server.openapi --check    # exit 1 when the checked-in file differs from the code

The pages' TypeScript types are generated from the checked-in file, and a test fails when it drifts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from lmxray.atomic import atomic_write

SPEC_PATH = Path(__file__).with_name("openapi.json")
REGENERATE = "python -m lmxray.server.openapi --write"


def generate() -> dict:
    """The schema of the app as the code defines it (independent of any runs folder or model)."""
    from lmxray.server.app import create_app
    from lmxray.server.config import ServeConfig

    with tempfile.TemporaryDirectory() as runs:
        app = create_app(ServeConfig(runs=Path(runs)))
        try:
            return app.openapi()
        finally:
            app.state.lmxray.close()


def render(spec: dict) -> str:
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmxray.server.openapi", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help=f"regenerate {SPEC_PATH.name}")
    action.add_argument("--check", action="store_true", help=f"exit 1 when {SPEC_PATH.name} is out of date")
    args = parser.parse_args(argv)
    text = render(generate())
    if args.write:
        atomic_write(SPEC_PATH, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        print(f"wrote {SPEC_PATH}")
        return 0
    if SPEC_PATH.is_file() and SPEC_PATH.read_text(encoding="utf-8") == text:
        return 0
    print(f"{SPEC_PATH} is out of date; run: {REGENERATE}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
