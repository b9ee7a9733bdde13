"""The README's Python tour runs as written on the built-in model, and the values its comments quote hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.builtin

README = Path(__file__).resolve().parents[1] / "README.md"


def python_tour() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1, f"expected one python block in the README, found {len(blocks)}"
    return blocks[0]


def test_python_tour_runs_and_its_quoted_values_hold(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the tour writes france.jsonl, france.svg, france.html and runs/sweep
    tour = python_tour()
    space: dict = {}
    exec(compile(tour, str(README), "exec"), space)  # noqa: S102 - the README is this repository's own text
    trace, model = space["trace"], space["model"]

    assert (trace.predicted_text, round(trace.confidence, 4)) == (" Paris", 0.7725), "README: ' Paris' 0.7725"
    assert trace.attention.shape == (30, 5, 5), "README: attention shape (30, 5, 5)"
    assert space["lmxray"].open_trace("france.safetensors").layer_map(29).shape == (5, 5), "README: (5, 5)"
    assert space["f"].max_error <= 1e-4, "README: the flow's measured error"
    assert abs(sum(space["f"].logits[0].contributions) - space["f"].logits[0].logit) <= 1e-3, \
        "README: the direct logit attribution sums to the logit"
    from lmxray.analysis.lens import lens_summary
    assert lens_summary(trace, decode=model.token_text).first_top1 == 29, "README: ' Paris' top-1 at layer 29"
    induction = space["scores"].heads_with("induction", min_z=3)
    quoted = re.search(r'heads_with\("induction", min_z=3\)\s+# (\[.*?\])', tour).group(1)
    assert str(induction) == quoted, f"README quotes induction heads {quoted}, measured {induction}"
    from lmxray.probes.generate import logit_trace
    assert logit_trace(model, "Once upon a time", steps=8).steps[0].flag == "confident"
    assert space["graph"].max_error <= 1e-4, f"README: routes' parts re-sum to the residual, drift {space['graph'].max_error:.2e}"
    assert space["hit"] is False and space["cached"].predicted_text == " Paris", "README: a first trace_cached is a miss"
    assert space["record"].run_id in [r.run_id for r in space["runs"].list()], "README: the run is listed in the store"
    for name in ("france.jsonl", "france.svg", "france.html"):
        assert (tmp_path / name).stat().st_size > 0, f"the tour should have written {name}"
