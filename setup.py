"""Build hook: a wheel must ship the explorer's built pages, so building one without them fails with the fix.

The pages (web/, TypeScript + Vite) are built into src/lmxray/server/static by `make web` (run by `make setup`);
they are not committed. Editable installs read the source tree and need no check.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PAGES = Path(__file__).resolve().parent / "src" / "lmxray" / "server" / "static" / "index.html"


class BuildPyWithPages(build_py):
    """build_py that refuses to build a package without the explorer's index.html."""

    def run(self):
        if not getattr(self, "editable_mode", False) and not PAGES.is_file():
            raise SystemExit(f"error: {PAGES} is missing: the wheel would ship without the explorer pages — "
                             "run `make web` (npm ci && npm run build in web/) first")
        super().run()


setup(cmdclass={"build_py": BuildPyWithPages})
