"""Sweep and profile outputs in three steps: compute (pure), store, draw; together byte-identical to finish_*."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lmxray.cli import main
from lmxray.experiments.store import RunStore

MEAN_TOL = 1e-12  # a summary mean vs numpy's mean over the computed per-pair table (float64 both)


def files(folder) -> dict[str, bytes]:
    """Every file a run folder's outputs consist of (its manifest, lock and parts left out)."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name not in ("run.json", ".lmxray.lock")}


def reopen(folder, command: str) -> RunStore:
    manifest = json.loads((folder / "run.json").read_text())
    return RunStore(folder, command, manifest["model"], manifest["settings"], manifest.get("schema", 1))


@pytest.fixture(scope="module")
def runs(tiny_dir, tmp_path_factory):
    """A finished sweep and profile on the tiny model, with their inputs."""
    from test_sweep import write_pairs

    root = tmp_path_factory.mktemp("runs")
    pairs = write_pairs(root / "pairs.jsonl", 8)
    assert main(["sweep", str(pairs), "--model", str(tiny_dir), "--out", str(root / "sweep"), "--batch-size", "3",
                 "--json"]) == 0
    (root / "code.txt").write_text("int main() { return 0; }\n\ndef f(x):\n    return x + 1\n\na b c\n")
    assert main(["profile", "--corpus", f"code={root / 'code.txt'}", "--model", str(tiny_dir), "--out",
                 str(root / "profile"), "--max-tokens", "40", "--top", "2", "--json"]) == 0
    return root


def test_sweep_compute_is_pure_and_store_and_draw_rebuild_the_folder(runs, tmp_path):
    from lmxray.experiments.datasets import read_pairs
    from lmxray.experiments.sweep_report import draw_sweep, store_sweep
    from lmxray.experiments.sweep_summary import compute_sweep

    folder = runs / "sweep"
    before = files(folder)
    summary = json.loads(before["summary.json"])
    tables = compute_sweep(reopen(folder, "sweep").read(), read_pairs(runs / "pairs.jsonl"), summary["threshold"],
                           summary["model"], summary["align"])
    assert files(folder) == before, "compute wrote to the run folder"
    assert tables.summary == summary
    pairs = tables.pairs.to_pydict()
    for row in tables.summary["categories"]:
        mine = [js for js, c in zip(pairs["mean_js"], pairs["category"]) if row["category"] in (c, "all")]
        d = abs(row["mean_js"] - float(np.mean(mine)))
        assert d <= MEAN_TOL, f"{row['category']}: mean JS drifts {d:.2e} from the pair table (tol {MEAN_TOL})"
    store_sweep(tmp_path, tables)
    assert set(files(tmp_path)) == {n for n in before if not n.endswith(".png")}, "store writes the tables only"
    draw_sweep(tmp_path, tables)
    rebuilt = files(tmp_path)
    assert rebuilt.keys() == before.keys()
    assert [n for n in before if rebuilt[n] != before[n]] == [], "store + draw differ from finish_sweep's files"


def test_profile_compute_is_pure_and_store_and_draw_rebuild_the_folder(runs, tmp_path):
    from lmxray.experiments.datasets import read_corpus
    from lmxray.experiments.profile import ProfileConfig
    from lmxray.experiments.profile_report import draw_profile, store_profile
    from lmxray.experiments.profile_summary import compute_profile

    folder = runs / "profile"
    before = files(folder)
    summary = json.loads(before["summary.json"])
    tables = compute_profile(reopen(folder, "profile").read(), {"code": read_corpus("code", runs / "code.txt")},
                             ProfileConfig(max_tokens=40), summary["model"], top=2)
    assert files(folder) == before, "compute wrote to the run folder"
    assert tables.summary == summary
    var = np.array([r["abs_mean_var"] for r in tables.profile])
    assert summary["corpora"][0]["most_sensitive_layers"] == [int(i) for i in np.argsort(-var, kind="stable")[:2]]
    store_profile(tmp_path, tables)
    assert set(files(tmp_path)) == {n for n in before if not n.endswith(".png")}, "store writes the tables only"
    draw_profile(tmp_path, tables)
    rebuilt = files(tmp_path)
    assert rebuilt.keys() == before.keys()
    assert [n for n in before if rebuilt[n] != before[n]] == [], "store + draw differ from finish_profile's files"
