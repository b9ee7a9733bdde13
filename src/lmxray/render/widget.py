"""Traces and flows in Jupyter, interactive: the explorer pages with the object's view JSON in an anywidget.

The widget shows the same page the report embeds (the built bundle inline, the run's data beside it) in a
sandbox-free ``srcdoc`` frame, so it needs no server and loads nothing. Without anywidget (the ``jupyter``
extra) or a built bundle, ``mimebundle`` gives the static summary alone, as ``_repr_html_`` does.
"""

from __future__ import annotations

import html as html_escape

from lmxray.errors import LmxrayError
from lmxray.render.report import explorer_block, explorer_data, trace_summary_html
from lmxray.trace.types import Trace

FRAME_HEIGHT_PX = 720
# The widget's front end: one frame whose document is the explorer page (its bundle and data inline).
ESM = f"""
export default {{
  render({{ model, el }}) {{
    const frame = document.createElement("iframe");
    frame.style.width = "100%";
    frame.style.height = "{FRAME_HEIGHT_PX}px";
    frame.style.border = "1px solid #ddd";
    frame.srcdoc = model.get("page");
    model.on("change:page", () => {{ frame.srcdoc = model.get("page"); }});
    el.appendChild(frame);
  }}
}};
"""


def explorer_page(obj, decode=None) -> str | None:
    """The explorer page of a Trace (opens on its graph) or a Flow (opens on its flow view, the flow's trace
    beside it); None when the bundle is not built."""
    from lmxray.flow.result import Flow
    from lmxray.views.flow import flow_view

    if isinstance(obj, Flow):
        if obj.trace is None:
            raise LmxrayError("this Flow carries no trace to show beside it (read from a file without one)",
                              "compute it again with lmxray.flow.flow(model, prompt)")
        data = {**explorer_data(obj.trace, decode), "view": "flow", "flow": flow_view(obj).to_dict()}
    elif isinstance(obj, Trace):
        data = explorer_data(obj, decode)
    else:
        raise LmxrayError(f"cannot show a {type(obj).__name__} in the explorer", "pass a Trace or a Flow")
    block = explorer_block(data)
    if block is None:
        return None
    return (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>lmxray explorer</title></head>"
            f"<body>\n{block}\n</body></html>\n")


def explorer_widget(obj, decode=None):
    """An anywidget showing ``obj`` (a Trace or a Flow) in the explorer; None without anywidget or a built bundle."""
    try:
        import anywidget
        import traitlets
    except ImportError:
        return None
    page = explorer_page(obj, decode)
    if page is None:
        return None

    class ExplorerWidget(anywidget.AnyWidget):
        _esm = ESM
        page = traitlets.Unicode("").tag(sync=True)

    return ExplorerWidget(page=page)


def static_html(obj) -> str:
    """The static summary of a Trace (the report's first section) or of a Flow's trace."""
    trace = getattr(obj, "trace", None) if not isinstance(obj, Trace) else obj
    if trace is None:
        return f"<p>lmxray {html_escape.escape(type(obj).__name__)} (no trace to summarise)</p>"
    return trace_summary_html(trace)


def mimebundle(obj, include=None, exclude=None) -> tuple[dict, dict]:
    """What Jupyter shows for ``obj`` (``_repr_mimebundle_``): the interactive widget when it can be built, with the
    static summary as the ``text/html`` fallback every front end can render; (data, metadata)."""
    widget = explorer_widget(obj)
    shown = None if widget is None else widget._repr_mimebundle_(include=include, exclude=exclude)
    data, metadata = shown if isinstance(shown, tuple) else (shown, {})  # anywidget answers (data, metadata)
    bundle = {**(data or {}), "text/html": static_html(obj), "text/plain": f"lmxray {type(obj).__name__}"}
    return bundle, dict(metadata or {})
