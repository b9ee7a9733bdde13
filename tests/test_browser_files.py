"""Pages opened from files, in a real browser (fixtures in browser_fixtures.py): a trace file dropped on the served
page, and a report and a Flow widget page opened from disk with no request but `file:`/`data:`, each checked against
the library's view of the same trace."""

from __future__ import annotations

import re

import pytest
from browser_helpers import PROMPT, WAIT_MS, close, shown_rows, wait_ready

pytest_plugins = ["browser_fixtures"]
pytestmark = pytest.mark.browser


DROP_JS = """([name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name));
  document.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
  document.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
}"""


def test_a_dropped_trace_file_opens_as_a_run(page, server, tmp_path):
    import base64

    from lmxray import load
    from lmxray.trace.reader import read_trace
    from lmxray.views import lens_view

    path = tmp_path / "mine.jsonl"
    load(server.model, device="cpu").trace("A dropped trace of a few words").save(path)
    page.goto(f"{server.url}?view=lens")
    wait_ready(page)
    page.evaluate(DROP_JS, [path.name, base64.b64encode(path.read_bytes()).decode()])
    page.wait_for_url(re.compile(r"run=[0-9a-f]{32}"), timeout=WAIT_MS)
    wait_ready(page)
    trace = read_trace(path)
    ref = lens_view(trace, trace.position)
    assert f"position {trace.position}" in page.inner_text("main h3")
    shown = shown_rows(page, "main .table")
    assert [r[0] for r in shown] == [f"L{r.layer}" for r in ref.rows]
    for cells, r in zip(shown, ref.rows, strict=True):
        assert close(cells[4], r.target_prob), f"L{r.layer}: the page shows p {cells[4]}, the file holds {r.target_prob}"
    page.reload()  # the uploaded run's permalink reopens it
    wait_ready(page)
    assert shown_rows(page, "main .table") == shown
    page.evaluate(DROP_JS, ["weights.bin", "AAAA"])  # refused in the page, with the fix, before any upload
    assert ".safetensors" in page.locator(".errors .error .fix").inner_text()


def test_a_report_file_opens_the_explorer_offline(page, server, tmp_path):
    from lmxray import load
    from lmxray.capture.plan import CapturePlan
    from lmxray.render.report import build_report, write_report
    from lmxray.views import lens_view

    model = load(server.model, device="cpu")
    trace = model.trace(PROMPT, plan=CapturePlan(per_head=True))
    path = tmp_path / "report.html"
    write_report(build_report(trace, decode=model.token_text), path)
    page.goto(path.as_uri())
    wait_ready(page)
    page.wait_for_selector("canvas[aria-label='attention graph']")
    assert all(u.startswith(("file:", "data:", "blob:")) for u in page.seen), f"the report asked for {page.seen}"
    page.click("nav.tabs >> text=lens")
    wait_ready(page)
    ref = lens_view(trace, trace.position, model.token_text)
    shown = shown_rows(page, "main .table")
    assert [r[0] for r in shown] == [f"L{r.layer}" for r in ref.rows]
    for cells, r in zip(shown, ref.rows, strict=True):
        assert close(cells[4], r.target_prob), f"L{r.layer}: the report shows {cells[4]}, the library {r.target_prob}"
    page.click("nav.tabs >> text=maps")
    wait_ready(page)
    assert page.evaluate("window.lmxray.maps.heads") == list(trace.heads)
    page.reload()  # the file's own permalink reopens the view
    wait_ready(page)
    assert "view=maps" in page.url and page.evaluate("window.lmxray.maps.heads") == list(trace.heads)


def test_a_flow_widget_page_shows_the_librarys_attribution(page, server, tmp_path):
    from lmxray import load
    from lmxray.flow import flow
    from lmxray.render.widget import explorer_page
    from lmxray.views import flow_view

    f = flow(load(server.model, device="cpu"), PROMPT)
    path = tmp_path / "widget.html"
    path.write_text(explorer_page(f), encoding="utf-8")  # the document the notebook's frame shows
    page.goto(path.as_uri())
    wait_ready(page)
    page.wait_for_selector("canvas[aria-label='flow by source']")
    ref = flow_view(f).attribution[0]
    rows = shown_rows(page, ".flow .attribution")
    assert len(rows) == len(ref.contributions)
    for cells, value in zip(rows, ref.contributions, strict=True):
        assert close(cells[1], value), f"source {cells[0]}: the widget shows {cells[1]}, the library {value}"
    assert all(u.startswith(("file:", "data:", "blob:")) for u in page.seen), f"the widget asked for {page.seen}"
