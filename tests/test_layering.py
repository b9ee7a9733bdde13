"""The house's layers, checked on the source: each package imports only what sits below it (lazy imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lmxray"
BASE = ("lmxray.errors", "lmxray.atomic", "lmxray.special", "lmxray.version")
# package -> the lmxray modules it may import (besides itself and BASE)
ALLOWED = {
    "trace": (),
    "adapters": (),
    "analysis": ("lmxray.trace",),
    "capture": ("lmxray.trace", "lmxray.adapters"),
    "store": ("lmxray.trace", "lmxray.capture", "lmxray.models"),  # keeps traces; below server/ and cli/
    # runs batches locally or on Ray; loads models, never imports experiments/ (the jobs are handed to it)
    "engines": ("lmxray.models", "lmxray.adapters", "lmxray.capture", "lmxray.trace"),
    # run models for one purpose (head probes, generation, twins); below pipelines/, views/ and render/
    "probes": ("lmxray.trace", "lmxray.analysis", "lmxray.capture", "lmxray.models", "lmxray.adapters"),
    # the model runs behind one output (the report's traces, twin, head scores); never renders or parses flags
    "pipelines": ("lmxray.trace", "lmxray.analysis", "lmxray.capture", "lmxray.models", "lmxray.probes"),
    # arranges results; never renders or parses flags. Reads a run folder's summary (store, its layout) and the
    # logit trace's flag thresholds (probes.generate, imported lazily: views load without torch)
    "views": ("lmxray.trace", "lmxray.analysis", "lmxray.flow", "lmxray.experiments.store",
              "lmxray.experiments.sweep_summary", "lmxray.probes.generate"),
    # HTTP, jobs and the run store over the library: calls views/flow/probes/experiments, never computes an
    # analysis itself; below cli/ only
    "server": ("lmxray.trace", "lmxray.analysis", "lmxray.capture", "lmxray.models", "lmxray.flow", "lmxray.probes",
               "lmxray.experiments", "lmxray.store", "lmxray.views"),
}


def lmxray_imports(path: Path) -> list[str]:
    """Every lmxray module a file imports, at any depth (lazy imports inside functions included)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.split(".")[0] == "lmxray"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "lmxray":
                out += [node.module] if node.module != "lmxray" else [f"lmxray.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            out.append("a relative import")
    return out


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_sits_below_it(package):
    allowed = (f"lmxray.{package}",) + BASE + ALLOWED[package]
    files = sorted((SRC / package).glob("*.py"))
    assert files, f"no modules under {package}/"
    bad = {f.name: m for f in files for m in lmxray_imports(f)
           if not any(m == a or m.startswith(a + ".") for a in allowed)}
    assert not bad, f"{package}/ may import only {allowed} from lmxray; found {bad}"


def test_the_check_sees_lazy_root_and_relative_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import lmxray\nfrom lmxray import render\nfrom . import x\ndef f():\n    from lmxray.models import X\n")
    assert lmxray_imports(probe) == ["lmxray", "lmxray.render", "a relative import", "lmxray.models"]


def test_no_handler_swallows_the_user_error():
    """LmxrayError is a ValueError: an `except ValueError` (or Exception) around a `raise LmxrayError` would hide
    it, as one did in the CLI's trace-path check. Checked on the source; calls that raise it are the author's care."""
    bad = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Try):
                continue
            raises_it = any(isinstance(n, ast.Name) and n.id == "LmxrayError" for stmt in node.body for n in ast.walk(stmt))
            for h in node.handlers:
                names = {n.id for n in ast.walk(h.type) if isinstance(n, ast.Name)} if h.type else {"BaseException"}
                if "LmxrayError" in names:
                    break  # re-raised (or handled) before any broader handler sees it
                if raises_it and names & {"ValueError", "Exception", "BaseException"}:
                    bad.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not bad, f"handlers that swallow an LmxrayError raised in their try block: {bad}"
