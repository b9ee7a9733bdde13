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
from lmxray.render.figures import (EXPECTED_COLOR, NEUTRAL_COLOR, TICK_SPACE, UNEXPECTED_COLOR, rect, resolve_choice,
                                   text_inches, token_label)
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
ROTATE_ABOVE = 12  # position labels turn vertical on longer prompts
BAR_INCHES = 3.6  # width of the convergence bar's axes
MIN_AXES_INCHES = 2.0  # the figure grows taller rather than squeeze the axes below this under long labels
TICK_FONT, TITLE_FONT, LABEL_FONT, LEGEND_FONT, SUPTITLE_FONT = 8, 9, 10, 7, 11  # points
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
    height = min(max(4 + 0.9 * len(bands), 2 + 0.22 * min(len(rows), MAX_BARS)), 40)
    layout = _FlowLayout(trace, bands, rows, min_share, min(3 + 0.55 * trace.n_tokens, 30), height)
    fig = Figure(figsize=layout.size)
    graph, bar = fig.add_axes(layout.graph), fig.add_axes(layout.bar)
    lanes = _draw_graph(graph, trace, band_weights(trace, bands), bands, min_share)
    status = _draw_bar(bar, trace, rows)
    fig.legend(handles=lanes + status, loc="lower center", bbox_to_anchor=(0.5, layout.PAD / layout.size[1]),
               ncol=len(lanes) + len(status), fontsize=LEGEND_FONT, frameon=False, borderpad=0)
    fig.suptitle(layout.title, fontsize=SUPTITLE_FONT, y=1 - layout.PAD / layout.size[1], va="top")
    return fig


def _position_labels(trace: Trace) -> tuple[range, list[str]]:
    """The graph's x ticks and their labels ('position\\ntoken'): every n-th position on long prompts."""
    ticks = range(0, trace.n_tokens, -(-trace.n_tokens // MAX_TICKS))
    return ticks, [f"{p}\n{token_label(trace.tokens[p])}" for p in ticks]


def _band_labels(bands: list[list[int]]) -> list[str]:
    """The graph's y labels: 'L3' for a band of one layer, else its span."""
    return [f"L{band[0]}" if len(band) == 1 else layer_span(band) for band in bands]


def _bar_labels(rows: list[ConvergenceRow]) -> list[str]:
    """The bar's y labels, 'position token', in the order the bars are drawn."""
    return [f"{r.position} {token_label(r.token)}" for r in _bar_rows(rows)]


def _bar_rows(rows: list[ConvergenceRow]) -> list[ConvergenceRow]:
    """The rows the bar draws: the MAX_BARS heaviest, in position order."""
    return sorted(rows[:MAX_BARS], key=lambda r: r.position)  # rows come heaviest first


class _FlowLayout:
    """Fixed positions of the graph and the bar (figure fractions) from their measured labels and titles.

    Every label is known before drawing, so the margins are computed once here instead of by a layout engine
    measuring every text at each save. A long title or legend widens the figure rather than being cut.
    """

    PAD = 0.12  # inches around the figure's edge and between blocks

    def __init__(self, trace: Trace, bands: list[list[int]], rows: list[ConvergenceRow], min_share: float,
                 graph_w: float, height: float):
        self.title = (f"{trace.model.name}: {token_label(trace.prompt)[:90]} → {token_label(trace.predicted_text)}"
                      f" ({trace.confidence:.4f})")
        line = text_inches(["x"], TITLE_FONT)[1]  # one title line
        ticks_w, ticks_h = text_inches(_position_labels(trace)[1], TICK_FONT)
        below_graph = ticks_w if trace.n_tokens > ROTATE_ABOVE else ticks_h
        axis_label = text_inches(["x"], LABEL_FONT)[1] + 4 / 72  # an axis label and its 4 pt pad
        legend_h = text_inches(["x"], LEGEND_FONT)[1]
        suptitle_w, suptitle_h = text_inches([self.title], SUPTITLE_FONT)
        most = len(bands) * trace.n_tokens * (trace.n_tokens + 1) // 2  # edges when every weight is drawn
        graph_title_w = text_inches([_graph_title(trace, bands, 1 / 3, most, most, min_share)], TITLE_FONT)[0]
        self.bottom = self.PAD + legend_h + self.PAD + axis_label + TICK_SPACE + below_graph
        title_lines = 3 if len(rows) > MAX_BARS else 2  # the bar's title says when it shows the heaviest only
        top = self.PAD + suptitle_h + self.PAD + title_lines * line + 6 / 72
        left = self.PAD + axis_label + text_inches(_band_labels(bands), TICK_FONT)[0] + TICK_SPACE
        annotation = text_inches([f"→ {token_label(trace.predicted_text)}"], TICK_FONT)[0] + 4 / 72
        gap = 2 * self.PAD + text_inches(_bar_labels(rows), TICK_FONT)[0] + TICK_SPACE + annotation
        graph_w = max(graph_w, graph_title_w)
        width = left + graph_w + gap + BAR_INCHES + 3 * self.PAD
        width = max(width, suptitle_w + 2 * self.PAD, _legend_inches(trace) + 2 * self.PAD)
        self.size = (width, max(height, self.bottom + top + MIN_AXES_INCHES))  # long labels: a taller figure
        graph_w = width - left - gap - BAR_INCHES - 3 * self.PAD  # a wider figure gives the graph the room
        axes_h = self.size[1] - self.bottom - top
        self.graph = rect(self.size, left, self.bottom, graph_w, axes_h)
        self.bar = rect(self.size, left + graph_w + gap, self.bottom, BAR_INCHES, axes_h)


def _legend_inches(trace: Trace) -> float:
    """Width of the one-row legend: each entry's label plus its handle, pad and column spacing (4.8 em)."""
    names = [n for n in trace.components if n in LANES or n == "input_embedding"]
    names += ["expected", "unexpected", "no expectation given"]
    return sum(text_inches([n], LEGEND_FONT)[0] for n in names) + len(names) * 4.8 * LEGEND_FONT / 72


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
    ax.set_xticks(*_position_labels(trace), rotation=90 if n_tok > ROTATE_ABOVE else 0, fontsize=TICK_FONT)
    ax.set_yticks([b + 0.5 for b in range(n_band)], _band_labels(bands), fontsize=TICK_FONT)
    for b in range(1, n_band):
        ax.axhline(b, color="#dddddd", lw=0.5, zorder=0)
    ax.set_xlabel("position (token)", fontsize=LABEL_FONT)
    grouped = max(len(band) for band in bands) > 1
    ax.set_ylabel("layer band (component lanes bottom to top)" if grouped else "layer (component lanes bottom to top)",
                  fontsize=LABEL_FONT)
    ax.set_title(_graph_title(trace, bands, heaviest, kept, total, min_share), fontsize=TITLE_FONT)
    return handles


def _graph_title(trace: Trace, bands: list[list[int]], heaviest: float, kept: int, total: int,
                 min_share: float) -> str:
    heads = "summed over heads" if trace.attention is not None else f"summed over {len(trace.heads)} heads"
    mean = ", mean over each band's layers" if max(len(band) for band in bands) > 1 else ""
    return (f"attention flow: line width ∝ weight {heads}{mean} (heaviest {heaviest:.3g});\n"
            f"{kept} of {total} edges drawn (≥ {min_share:g} × heaviest); grey: from position 0 (sink), "
            f"dark red: into position {trace.position}")


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
                xytext=(4, 0), textcoords="offset points", va="center", fontsize=TICK_FONT)
    return handles


def _draw_bar(ax, trace: Trace, rows: list[ConvergenceRow]) -> list[Patch]:
    """Mass per key position (summed over layers and heads) at the prediction position, in position order."""
    ordered = _bar_rows(rows)
    colors = {"expected": EXPECTED_COLOR, "unexpected": UNEXPECTED_COLOR, "": NEUTRAL_COLOR}
    ys = np.arange(len(ordered))
    masses = [r.mass for r in ordered]
    ax.barh(ys, masses, color=[colors[r.status] for r in ordered], height=0.75)
    ax.set_yticks(ys, _bar_labels(rows), fontsize=TICK_FONT)
    ax.invert_yaxis()
    top = max(masses, default=0.0)
    for y, m in zip(ys, masses):
        ax.text(m + 0.01 * top, y, f"{m:.2f}", va="center", fontsize=7)
    ax.set_xlim(0, top * 1.25 if top > 0 else 1)
    ax.set_xlabel("attention mass (summed over layers and heads)", fontsize=LABEL_FONT)
    shown = "" if len(rows) <= MAX_BARS else f"\n(the {MAX_BARS} heaviest of {len(rows)} positions)"
    ax.set_title(f"convergence at position {trace.position}: mass summed over\n{convergence_layers(trace)}{shown}",
                 fontsize=TITLE_FONT)
    legend = [Patch(color=EXPECTED_COLOR, label="expected"), Patch(color=UNEXPECTED_COLOR, label="unexpected")]
    if any(r.status == "" for r in ordered):
        legend = [Patch(color=NEUTRAL_COLOR, label="no expectation given")]
    return legend


def convergence_layers(trace: Trace) -> str:
    """Which layers and heads the convergence bar sums, e.g. 'all 30 layers (L0–L29) and 9 heads'."""
    layers = list(trace.layers)
    scope = f"all {len(layers)} layers" if len(layers) == trace.model.n_layers else f"{len(layers)} captured layers"
    return f"{scope} ({layer_span(layers)}) and {trace.model.n_heads} heads"
