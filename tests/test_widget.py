"""Traces and flows in Jupyter: the anywidget carries the explorer page with the object's views (equal to the
library's), its front end loads nothing, and without anywidget or the bundle the static summary stays."""

from __future__ import annotations

import json
import re

import pytest

from lmxray.capture.plan import CapturePlan
from lmxray.models.loader import from_hf
from lmxray.render import widget as widget_module
from lmxray.render.report import BUNDLE, trace_summary_html
from tiny_models import BosTokenizer, tiny_model

anywidget = pytest.importorskip("anywidget", reason="the jupyter extra (anywidget) is not installed")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def model():
    return from_hf(tiny_model("llama"), BosTokenizer(), "tiny-llama")


def page_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="lmxray-data">(.*?)</script>', page, re.S)
    assert match, "the widget's page carries no explorer data"
    return json.loads(match.group(1))


@pytest.mark.skipif(not (BUNDLE / "index.html").is_file(), reason="the explorer bundle is not built (make web)")
def test_a_trace_and_a_flow_show_as_widgets_with_the_librarys_views(model):
    from lmxray.flow import flow
    from lmxray.views import flow_view, trace_view

    trace = model.trace("see https://x.io now", plan=CapturePlan(per_head=True))
    w = widget_module.explorer_widget(trace)
    assert "://" not in w.page and "://" not in widget_module.ESM, "the widget carries a URL"
    data = page_data(w.page)
    assert data["summary"] == json.loads(json.dumps(trace_view(trace, strict=False).to_dict()))
    bundle, _ = widget_module.mimebundle(trace)
    assert WIDGET_VIEW in bundle and bundle["text/html"] == trace_summary_html(trace)
    assert set(trace._repr_mimebundle_()[0]) == set(bundle), "Jupyter's display of a Trace is not the widget bundle"
    f = flow(model, "The cat sat on the mat")
    assert WIDGET_VIEW in f._repr_mimebundle_()[0], "Jupyter's display of a Flow is not the widget"
    data = page_data(widget_module.explorer_widget(f).page)
    assert data["view"] == "flow" and data["flow"] == json.loads(json.dumps(flow_view(f).to_dict()))
    assert data["summary"]["prompt"] == "The cat sat on the mat"


def test_without_the_bundle_the_static_summary_is_shown(model, monkeypatch, tmp_path):
    import lmxray.render.report as report

    monkeypatch.setattr(report, "BUNDLE", tmp_path)
    trace = model.trace("hello there")
    assert widget_module.explorer_widget(trace) is None
    bundle, metadata = widget_module.mimebundle(trace)
    assert set(bundle) == {"text/html", "text/plain"} and bundle["text/html"] == trace_summary_html(trace)
    assert metadata == {}


def test_other_objects_are_refused_in_one_line():
    from lmxray.errors import LmxrayError

    with pytest.raises(LmxrayError, match="pass a Trace or a Flow"):
        widget_module.explorer_page(42)
