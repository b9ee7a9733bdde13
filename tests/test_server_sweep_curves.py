"""GET /api/experiments/{name}/curves: a sweep's per-category curves equal the data its figure is drawn from
(lmxray.experiments.sweep_summary.compute_sweep over the stored rows), and other runs are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run as run_cli
from server_helpers import assert_matches, assert_user_error, serving

from lmxray.experiments.datasets import pair_source, read_pairs
from lmxray.experiments.store import RunStore
from lmxray.experiments.sweep_summary import compute_sweep
from lmxray.server.schemas import SweepCurvesOut

CURVE_TOL = 1e-12  # the same float64 arithmetic on the same rows


@pytest.fixture(scope="module")
def swept(tiny_dir, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    return runs, tiny_dir


def test_curves_are_the_figures_data(swept, capsys):
    runs, tiny_dir = swept
    code, _, err = run_cli(capsys, "sweep", "--model", tiny_dir, "--out", runs / "sw", "--limit", "6")
    assert code == 0, err
    with serving(runs, [tiny_dir]) as client:
        got = client.get("/api/experiments/sw/curves").json()
        assert_matches(SweepCurvesOut, got)
        stored = RunStore(runs / "sw", "sweep", str(tiny_dir), {}).read()
        pairs = read_pairs(pair_source("contexts"))
        ref = compute_sweep(stored, pairs, 0.05, "m", "tokens")
        assert [c["category"] for c in got["categories"]] == list(ref.bands)
        for c in got["categories"]:
            mean, lo, hi = ref.bands[c["category"]]
            for name, want in (("js_mean", mean), ("js_lo", lo), ("js_hi", hi),
                               ("first_share", ref.bos_curves[c["category"]])):
                drift = np.max(np.abs(np.asarray(c[name]) - want))
                assert drift <= CURVE_TOL, f"{c['category']} {name} drifts {drift:.3g} from compute_sweep's"
        assert got["layers"] == 3 and got["level"] == 0.95
        assert_user_error(client.get("/api/experiments/nope/curves"), 404, "no experiment")
        (runs / "half").mkdir()
        (runs / "half" / "run.json").write_text('{"format": "lmxray.run/1", "command": "sweep", "model": "m"}')
        assert_user_error(client.get("/api/experiments/half/curves"), 409, "not finished")
