"""Rich display of lmxray objects in Jupyter, kept above trace/ so that record types never import render/.

``lmxray/__init__.py`` attaches ``trace_html`` to ``Trace`` as ``_repr_html_``; matplotlib and the
report code load only when a notebook first shows a trace.
"""

from __future__ import annotations


def trace_html(trace) -> str:
    """The Jupyter summary of a trace: model, prompt, prediction, top-k, convergence table and metrics (as in the report)."""
    from lmxray.render.report import trace_summary_html

    return trace_summary_html(trace)
