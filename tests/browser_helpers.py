"""Helpers for the browser tests: the live `lmxray serve` they drive, waiting for the page, tracing the prompt from
its prompt bar, the run's trace read back with lmxray's own reader, the rows a table shows and the display tolerance.
Their fixtures (the server, chromium, a guarded page) are in browser_fixtures.py."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlparse

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "browser"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
PROMPT = "The cat sat on the mat. The cat"
DISPLAY_REL_TOL = 5e-3  # the page prints 3 significant digits
WAIT_MS = 60_000  # a first trace on a cold server loads the model


class LiveServe:
    """`lmxray serve --port 0` in a subprocess (the real command): its URL read from the line it prints."""

    def __init__(self, model: str, runs: Path):
        self.model, self.runs = model, runs
        code = "import sys; from lmxray.cli import main; sys.exit(main(sys.argv[1:]))"
        self.proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--model", model, "--runs", str(runs),
                                      "--port", "0", "--device", "cpu"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        found = threading.Event()

        def read():
            for line in self.proc.stdout:
                self.lines.append(line)
                if line.startswith("open http://"):
                    self.url = line.split()[1].rstrip("/") + "/"
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(60):
            self.close()
            raise AssertionError(f"lmxray serve printed no URL in 60 s: {''.join(self.lines)[-2000:]}")
        assert urlparse(self.url).hostname == "127.0.0.1", self.url

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_ready(page):
    page.wait_for_function("window.lmxray && window.lmxray.ready", timeout=WAIT_MS)


def run_prompt(page, server) -> str:
    """Type the prompt, press Run, wait for the graph; the run id the URL now names."""
    page.goto(server.url)
    wait_ready(page)
    page.fill("input[name=prompt]", PROMPT)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"run=[0-9a-f]+"), timeout=WAIT_MS)
    wait_ready(page)
    page.wait_for_selector("canvas[aria-label='attention graph']", timeout=WAIT_MS)
    return parse_qs(urlparse(page.url).query)["run"][0]


def stored_trace(server, run: str, tmp_path):
    """The run's trace, downloaded from the server and read by lmxray's reader (not by the page's code)."""
    from lmxray.trace.reader import read_trace

    path = tmp_path / f"{run}.safetensors"
    with urllib.request.urlopen(f"{server.url}api/runs/{run}/trace", timeout=30) as r:
        path.write_bytes(r.read())
    return read_trace(path)


def shown_rows(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(f"{selector} tbody tr",
                                     "rows => rows.map(r => [...r.cells].map(c => c.textContent))")


def close(shown: str, ref: float) -> bool:
    return abs(float(shown) - ref) <= DISPLAY_REL_TOL * abs(ref) + 1e-12
