"""The attention flow figure: the forward pass as a graph, with the convergence bar beside it.

Left: positions across, captured layers bottom to top, grouped into at most
MAX_BANDS bands of consecutive layers (edge weight: the mean over the band's
layers); inside each band one lane per component. An edge runs from the key
position's value lane up to the query position's attention-output lane; its
width follows the weight summed over heads; edges from the first position
(the sink) are grey, edges into the prediction position dark red. Right: the
convergence bar of the prediction position, saying which layers it sums. Nothing here computes: weights and masses come from the
trace and from ``lmxray.analysis.convergence``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from lmxray.analysis.convergence import ConvergenceRow
from lmxray.errors import LmxrayError
from lmxray.render.figures import EXPECTED_COLOR, NEUTRAL_COLOR, UNEXPECTED_COLOR, resolve_choice, token_label
from lmxray.trace.types import Trace

# Height of each component's lane inside a layer band of height 1 (bottom to top).
LANES = {"query": 0.04, "key": 0.11, "value": 0.18, "attention_output": 0.66, "mlp_hidden": 0.75,
         "mlp_output": 0.84, "residual": 0.93}
LANE_COLORS = {"input_embedding": "#555555", "query": "#1f77b4", "key": "#17becf", "value": "#9467bd",
               "attention_output": "#d62728", "mlp_hidden": "#bcbd22", "mlp_output": "#8c564b", "residual": "#7f7f7f",
               "logits": "#000000"}
EDGE_COLOR = "#3b6ea5"
SINK_EDGE_COLOR = "#b0b0b0"  # edges from the first position: the attention sink, drawn apart
PREDICTION_EDGE_COLOR = "#8b0000"  # edges into the prediction position
MAX_BANDS = 8  # deeper traces group consecutive layers into bands, so edges keep a readable slope
MAX_LINE_WIDTH = 4.0  # points, for the heaviest edge drawn
DEFAULT_MIN_SHARE = 0.02  # edges lighter than this share of the heaviest edge are not drawn
MAX_BARS = 40  # longer prompts: the convergence bar shows the heaviest positions only, and says so
MAX_TICKS = 60  # longer prompts label every n-th position
FLOW_FIX = "trace again with attention capture on (the default; CapturePlan(attention=True))"


def flow_weights(trace: Trace) -> np.ndarray:
    """The head-summed attention maps [layer, q_pos, k_pos] the figure draws, as stored in the trace."""
    if trace.attention is not None:
        return np.asarray(trace.attention, dtype=np.float64)
    if trace.attention_heads is not None and len(trace.heads) == trace.model.n_heads:
        return np.asarray(trace.attention_heads, dtype=np.float64).sum(1)
    raise LmxrayError("the trace has no head-summed attention, which the flow figure needs", FLOW_FIX)


def layer_bands(layers: list[int], group: int | None = None) -> list[list[int]]:
    """Consecutive runs of ``group`` layers (default: as few as keep at most MAX_BANDS bands)."""
    if group is None:
        group = -(-len(layers) // MAX_BANDS)
    if group < 1:
        raise LmxrayError(f"group must be at least 1, got {group}", "pass e.g. --group 4 (1 draws every layer apart)")
    return [layers[i:i + group] for i in range(0, len(layers), group)]


def band_weights(trace: Trace, bands: list[list[int]]) -> np.ndarray:
    """[band, q_pos, k_pos]: the head-summed weights averaged over each band's layers."""
    weights = flow_weights(trace)
    return np.stack([weights[[trace.layers.index(l) for l in band]].mean(0) for band in bands])


def layer_span(layers: list[int]) -> str:
    """'L0-L29' for a consecutive run, else 'L0, L5, L9' (at most 8 shown)."""
    if len(layers) > 1 and layers == list(range(layers[0], layers[-1] + 1)):
        return f"L{layers[0]}–L{layers[-1]}"
    shown = ", ".join(f"L{l}" for l in layers[:8])
    return shown + (f" … ({len(layers)} layers)" if len(layers) > 8 else "")


def flow_figure(trace: Trace, rows: list[ConvergenceRow], *, layers: list[int] | None = None,
                min_share: float = DEFAULT_MIN_SHARE, group: int | None = None) -> Figure:
    """The flow graph (left) and the convergence bar of ``rows`` (right) for ``trace``.

    ``layers`` picks model layers to draw (default: every captured one), ``group``
    how many consecutive layers share a band (default: at most MAX_BANDS bands);
    edges lighter than ``min_share`` x the heaviest drawn edge are left out, and the figure says how many.
    """
    if not 0 <= min_share < 1:
        raise LmxrayError(f"min_share must lie in [0, 1), got {min_share}", "pass e.g. --min-share 0.02")
    flow_weights(trace)  # a trace without attention is refused before any layer choice
    chosen = trace.layers if layers is None else resolve_choice(
        layers, trace.model.n_layers, trace.layers, "layer", "--layers",
        "choose captured layers, or trace again capturing them (CapturePlan(layers=None) keeps all)")
    bands = layer_bands(sorted(chosen), group)
    n_tok = trace.n_tokens
    height = min(max(4 + 0.9 * len(bands), 2 + 0.22 * min(len(rows), MAX_BARS)), 40)
    width_graph = min(3 + 0.55 * n_tok, 30)
    fig = Figure(figsize=(width_graph + 4.5, height), layout="constrained")
    graph, bar = fig.subplots(1, 2, gridspec_kw={"width_ratios": [width_graph, 4.5]})
    lanes = _draw_graph(graph, trace, band_weights(trace, bands), bands, min_share)
    status = _draw_bar(bar, trace, rows)
    fig.legend(handles=lanes + status, loc="outside lower center", ncol=len(lanes) + len(status), fontsize=7,
               frameon=False)
    fig.suptitle(f"{trace.model.name}: {token_label(trace.prompt)[:90]} → {token_label(trace.predicted_text)}"
                 f" ({trace.confidence:.4f})", fontsize=11)
    return fig


def _draw_graph(ax, trace: Trace, weights: np.ndarray, bands: list[list[int]], min_share: float) -> list[Patch]:
    n_tok, n_band = trace.n_tokens, len(bands)
    heaviest = float(weights.max()) if weights.size else 0.0
    cut = heaviest * min_share
    b, q, k = np.nonzero(weights > 0)
    w = weights[b, q, k]
    keep = w >= cut if cut > 0 else w > 0
    total, kept = int(w.size), int(keep.sum())
    b, q, k, w = b[keep], q[keep], k[keep], w[keep]
    segments = np.stack([np.stack([k, b + LANES["value"]], -1), np.stack([q, b + LANES["attention_output"]], -1)], 1)
    widths = 0.15 + (MAX_LINE_WIDTH - 0.15) * w / heaviest if kept else []
    colors = np.where(k == 0, SINK_EDGE_COLOR, np.where(q == trace.position, PREDICTION_EDGE_COLOR, EDGE_COLOR))
    rank = np.where(k == 0, 0, np.where(q == trace.position, 2, 1))
    order = np.argsort(rank, kind="stable")  # sink edges at the back, the prediction's on top
    ax.add_collection(LineCollection(segments[order], linewidths=np.asarray(widths)[order] if kept else [],
                                     colors=list(colors[order]), alpha=0.65, zorder=1))
    handles = _draw_nodes(ax, trace, bands)
    ax.axvline(trace.position, color=UNEXPECTED_COLOR, lw=0.8, ls=":", zorder=0)
    ax.set_xlim(-0.7, n_tok - 0.3)
    ax.set_ylim(-0.45, n_band + 0.35)
    ticks = range(0, n_tok, -(-n_tok // MAX_TICKS))
    ax.set_xticks(ticks, [f"{p}\n{token_label(trace.tokens[p])}" for p in ticks],
                  rotation=90 if n_tok > 12 else 0, fontsize=8)
    labels = [f"L{band[0]}" if len(band) == 1 else layer_span(band) for band in bands]
    ax.set_yticks([b + 0.5 for b in range(n_band)], labels, fontsize=8)
    for b in range(1, n_band):
        ax.axhline(b, color="#dddddd", lw=0.5, zorder=0)
    ax.set_xlabel("position (token)")
    grouped = max(len(band) for band in bands) > 1
    ax.set_ylabel("layer band (component lanes bottom to top)" if grouped else "layer (component lanes bottom to top)")
    heads = "summed over heads" if trace.attention is not None else f"summed over {len(trace.heads)} heads"
    mean = ", mean over each band's layers" if grouped else ""
    ax.set_title(f"attention flow: line width ∝ weight {heads}{mean} (heaviest {heaviest:.3g});\n"
                 f"{kept} of {total} edges drawn (≥ {min_share:g} × heaviest); grey: from position 0 (sink), "
                 f"dark red: into position {trace.position}", fontsize=9)
    return handles


def _draw_nodes(ax, trace: Trace, bands: list[list[int]]) -> list[Patch]:
    """One dot per captured component vector; lanes with nothing captured stay empty."""
    handles = []
    for name, data in trace.components.items():
        norm = np.asarray(data.norm, dtype=np.float64)
        present = np.isfinite(norm).reshape(norm.shape[0], norm.shape[1], -1).any(-1)  # [layer, pos]
        if name == "input_embedding":
            ys, xs = np.full(int(present[0].sum()), -0.3), np.flatnonzero(present[0])
        elif name in LANES:
            banded = np.stack([present[[trace.layers.index(l) for l in band]].any(0) for band in bands])
            b, xs = np.nonzero(banded)
            ys = b + LANES[name]
        else:
            continue
        ax.scatter(xs, ys, s=6, color=LANE_COLORS[name], zorder=2, linewidths=0)
        handles.append(Patch(color=LANE_COLORS[name], label=name))
    ax.scatter([trace.position], [len(bands) + 0.15], s=30, marker="^", color=LANE_COLORS["logits"], zorder=3)
    ax.annotate(f"→ {token_label(trace.predicted_text)}", (trace.position, len(bands) + 0.15),
                xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    return handles


def _draw_bar(ax, trace: Trace, rows: list[ConvergenceRow]) -> list[Patch]:
    """Mass per key position (summed over layers and heads) at the prediction position, in position order."""
    ordered = sorted(rows[:MAX_BARS], key=lambda r: r.position)  # rows come heaviest first
    colors = {"expected": EXPECTED_COLOR, "unexpected": UNEXPECTED_COLOR, "": NEUTRAL_COLOR}
    ys = np.arange(len(ordered))
    masses = [r.mass for r in ordered]
    ax.barh(ys, masses, color=[colors[r.status] for r in ordered], height=0.75)
    ax.set_yticks(ys, [f"{r.position} {token_label(r.token)}" for r in ordered], fontsize=8)
    ax.invert_yaxis()
    top = max(masses, default=0.0)
    for y, m in zip(ys, masses):
        ax.text(m + 0.01 * top, y, f"{m:.2f}", va="center", fontsize=7)
    ax.set_xlim(0, top * 1.25 if top > 0 else 1)
    ax.set_xlabel("attention mass (summed over layers and heads)")
    shown = "" if len(rows) <= MAX_BARS else f"\n(the {MAX_BARS} heaviest of {len(rows)} positions)"
    ax.set_title(f"convergence at position {trace.position}: mass summed over\n{convergence_layers(trace)}{shown}",
                 fontsize=9)
    legend = [Patch(color=EXPECTED_COLOR, label="expected"), Patch(color=UNEXPECTED_COLOR, label="unexpected")]
    if any(r.status == "" for r in ordered):
        legend = [Patch(color=NEUTRAL_COLOR, label="no expectation given")]
    return legend


def convergence_layers(trace: Trace) -> str:
    """Which layers and heads the convergence bar sums, e.g. 'all 30 layers (L0–L29) and 9 heads'."""
    layers = list(trace.layers)
    scope = f"all {len(layers)} layers" if len(layers) == trace.model.n_layers else f"{len(layers)} captured layers"
    return f"{scope} ({layer_span(layers)}) and {trace.model.n_heads} heads"
