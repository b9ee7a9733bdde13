"""The compare view: two traces' metrics side by side, and per layer JS divergence at the prediction position."""

from __future__ import annotations

from dataclasses import dataclass

from lmxray.analysis.convergence import (COMPARE_METRICS, NORMALISED_METRICS, LayerComparison, compare,
                                         compare_layers, length_warning, model_note)
from lmxray.trace.types import Trace
from lmxray.views.base import View


@dataclass
class MetricRow:
    """One metric of the two traces' summaries (``key`` names the Summary field, ``metric`` is its label)."""

    metric: str
    a: object
    b: object
    key: str


@dataclass
class Side:
    """What one side of the comparison is: its prompt and what the model predicted."""

    prompt: str
    predicted_text: str


@dataclass
class CompareView(View):
    """What `lmxray compare` shows; ``a`` and ``b`` name the two traces (their files)."""

    a: str
    b: str
    warning: str | None  # the prediction positions see different numbers of tokens
    align: str  # "start" or "end": how per-layer JS pairs key positions
    metrics: list[MetricRow]
    layers: list[LayerComparison]  # empty when a trace has no attention maps
    models: str | None  # set when the traces come from different models
    sides: dict[str, Side]  # "a" and "b"
    peak_layer: int | None  # layer of the largest JS divergence (None without layers)
    peak_js_bits: float | None
    mean_js_bits: float | None


def compare_view(ta: Trace, tb: Trace, name_a: str, name_b: str, align: str = "start") -> CompareView:
    """Arrange analysis.convergence's compare, compare_layers and notes for two traces."""
    keys = [key for key, _ in COMPARE_METRICS + NORMALISED_METRICS]
    rows = [MetricRow(label, va, vb, key) for key, (label, va, vb) in zip(keys, compare(ta, tb), strict=True)]
    layers = compare_layers(ta, tb, align)
    peak = max(layers, key=lambda r: r.js_bits) if layers else None
    return CompareView(
        a=name_a, b=name_b, warning=length_warning(ta, tb), align=align, metrics=rows, layers=layers,
        models=model_note(ta, tb),
        sides={"a": Side(ta.prompt, ta.predicted_text), "b": Side(tb.prompt, tb.predicted_text)},
        peak_layer=None if peak is None else peak.layer, peak_js_bits=None if peak is None else peak.js_bits,
        mean_js_bits=sum(r.js_bits for r in layers) / len(layers) if layers else None,
    )
