"""Rich display of lmxray objects in Jupyter, kept above trace/ so that record types never import render/.

``lmxray/__init__.py`` attaches ``trace_html`` to ``Trace`` as ``_repr_html_`` and ``mimebundle`` to ``Trace`` and
``Flow`` as ``_repr_mimebundle_`` (the explorer widget, with the static summary as fallback); matplotlib, the
report code and anywidget load only when a notebook first shows one.
"""

from __future__ import annotations


def trace_html(trace) -> str:
    """The Jupyter summary of a trace: model, prompt, prediction, top-k, convergence table and metrics (as in the report)."""
    from lmxray.render.report import trace_summary_html

    return trace_summary_html(trace)


def mimebundle(obj, include=None, exclude=None) -> tuple[dict, dict]:
    """Jupyter's rich display of a Trace or Flow: the interactive explorer (anywidget) plus the static HTML summary."""
    from lmxray.render.widget import mimebundle as widget_bundle

    return widget_bundle(obj, include, exclude)
