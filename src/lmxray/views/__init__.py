"""Views: analysis results arranged as plain, serialisable data that every renderer (console, --json, report) shares.

A view never computes an analysis; it calls analysis/ and flow/ and arranges what they return.
``view.to_dict()`` is the JSON-ready form; the console tables format the same fields.
"""

from lmxray.views.base import View, plain
from lmxray.views.compare import CompareView, MetricRow, compare_view
from lmxray.views.experiments import ProfileView, SweepView, profile_view, sweep_view
from lmxray.views.flow import FlowView, flow_view
from lmxray.views.heads import HeadGrid, HeadScoresView, head_scores_view
from lmxray.views.lens import LensView, lens_view
from lmxray.views.logits import LogitsView, logits_view
from lmxray.views.maps import HeadMapsView, MapView, head_maps_view, map_view
from lmxray.views.routes import RoutesView, routes_view
from lmxray.views.trace import ConvergenceView, TraceView, convergence_view, trace_view

__all__ = ["CompareView", "ConvergenceView", "FlowView", "HeadGrid", "HeadMapsView", "HeadScoresView", "LensView",
           "LogitsView", "MapView", "MetricRow", "ProfileView", "RoutesView", "SweepView", "TraceView", "View", "compare_view",
           "convergence_view", "flow_view", "head_maps_view", "head_scores_view", "lens_view", "logits_view",
           "map_view", "plain", "profile_view", "routes_view", "sweep_view", "trace_view"]
