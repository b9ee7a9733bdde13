"""Seed 002's view of a flow: per layer, stacked bars of each source's contribution at the flow's position.

Top: each source's share of the residual after every layer (L2 norms divided by
their sum over sources). Middle: what each layer's attention and MLP added, per
source (L2 norms). Bottom: the direct logit attribution (the contrast A - B
when the flow has one). The first source (the attention sink) and the bias are
drawn apart, in grey, from the content sources. Nothing here computes.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from lmxray.flow.result import Flow
from lmxray.render.figures import TICK_SPACE, rect, text_inches, token_label

MAX_NAMED = 8  # content sources drawn in their own colour; the rest are summed into "other sources"
SINK_COLOR, BIAS_COLOR, OTHER_COLOR = "#bdbdbd", "#525252", "#e5e5e5"
SINK_HATCH = "xx"
PAD = 0.12  # inches around the figure's edge and between panels
TICK_FONT, TITLE_FONT, LABEL_FONT, LEGEND_FONT = 8, 10, 10, 8  # points
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def bar_groups(flow: Flow) -> tuple[list[int], list[int]]:
    """(named, other): content sources reaching the position, the ``MAX_NAMED`` largest by peak share named."""
    content = list(range(1, flow.reached(flow.position)))
    peak = flow.shares("total")[:, flow.position].max(0)
    named = sorted(sorted(content, key=lambda s: -peak[s])[:MAX_NAMED])
    return named, [s for s in content if s not in named]


def _segments(flow: Flow, values: np.ndarray, named: list[int], other: list[int]):
    """(label, [layer] values, colour, hatch) from bottom to top: sink, named sources, other, bias."""
    rows = [(f"first {token_label(flow.sources[0])} (sink)", values[:, 0], SINK_COLOR, SINK_HATCH)]
    rows += [(token_label(flow.sources[s]), values[:, s], PALETTE[i % len(PALETTE)], None) for i, s in enumerate(named)]
    if other:
        rows.append((f"{len(other)} other sources", values[:, other].sum(-1), OTHER_COLOR, None))
    rows.append(("<bias>", values[:, -1], BIAS_COLOR, None))
    return rows


def _stack(ax, x: np.ndarray, segments, width: float, alpha: float = 1.0, hatch: str | None = None) -> np.ndarray:
    """Draw the stacked bars bottom to top and return each stack's height.

    The bars are plain rectangles added as artists: the caller sets the axis limits, so no bar pays for a
    per-patch data-limit update (ax.bar's cost, a thousand bars on a 30-layer model).
    """
    bottom = np.zeros(len(x))
    for _, v, colour, seg_hatch in segments:
        h = seg_hatch or hatch
        for xi, vi, bi in zip(x, v, bottom):
            ax.add_artist(Rectangle((xi - width / 2, bi), width, vi, facecolor=colour, alpha=alpha, hatch=h,
                                    edgecolor="#666666" if h else "white", linewidth=0.3))
        bottom = bottom + v
    return bottom


def flow_bars_figure(flow: Flow) -> Figure:
    """Stacked per-source bars per layer at ``flow.position`` (shares, attention and MLP norms) and the attribution."""
    p = flow.position
    named, other = bar_groups(flow)
    layers = np.arange(flow.total.shape[0])
    fig = Figure(figsize=(max(9.0, 0.32 * len(layers) + 4.5), 11.0))
    top, mid, low = (fig.add_axes((0, 0, 1, 1)) for _ in range(3))  # placed by _place once the labels are known
    shares = _segments(flow, flow.shares("total")[:, p], named, other)
    _stack(top, layers, shares, 0.8)
    top.set_ylim(0, 1)
    top.set_ylabel("share of the residual")
    top.set_title(f"{flow.model.name}: sources of the residual at position {p} {token_label(flow.tokens[p])!r}, "
                  f"after each layer", loc="left", fontsize=TITLE_FONT)
    top.legend(handles=[Patch(facecolor=c, hatch=h, edgecolor="#666666", label=label) for label, _, c, h in shares],
               loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=LEGEND_FONT, frameon=False)

    attention = _stack(mid, layers - 0.2, _segments(flow, flow.attention[:, p].astype(np.float64), named, other), 0.38)
    mlp = _stack(mid, layers + 0.2, _segments(flow, flow.mlp[:, p].astype(np.float64), named, other), 0.38, alpha=0.6,
                 hatch="//")
    mid.set_ylim(0, 1.05 * float(max(attention.max(initial=0), mlp.max(initial=0))) or 1.0)  # ax.bar's 5% margin
    mid.set_ylabel("L2 norm added")
    mid.set_title("what each layer added per source: attention (left bar) and MLP (right bar, hatched)", loc="left",
                  fontsize=TITLE_FONT)
    for ax in (top, mid):
        ax.set_xticks(layers[:: max(1, len(layers) // 30)])
        ax.set_xlim(-0.7, len(layers) - 0.3)
        ax.set_xlabel("layer")

    _attribution(low, flow)
    _place(fig, (top, mid, low), [label for label, *_ in shares])
    return fig


def _place(fig: Figure, axes, legend_labels: list[str]) -> None:
    """Fixed positions of the three panels from their measured labels: one left edge, heights 3:3:2.

    Computed once here instead of by a layout engine measuring every text (and every bar) at each save.
    """
    width, height = fig.get_size_inches()
    title_h = text_inches(["x"], TITLE_FONT)[1] + 6 / 72  # a title and its 6 pt pad
    below = TICK_SPACE + 2 * text_inches(["x"], LABEL_FONT)[1] + 4 / 72  # x tick labels and the x label
    numbers = [ax.yaxis.get_major_formatter().format_ticks(ax.get_yticks()) for ax in axes[:2]]
    tick_w = max(text_inches(numbers[0] + numbers[1], LABEL_FONT)[0],
                 text_inches([t.get_text() for t in axes[2].get_yticklabels()], TICK_FONT)[0])
    left = PAD + text_inches(["x"], LABEL_FONT)[1] + 4 / 72 + tick_w + TICK_SPACE
    right = PAD + text_inches(legend_labels, LEGEND_FONT)[0] + 5 * LEGEND_FONT / 72  # the legend beside the top panel
    free = height - 2 * PAD - 3 * (title_h + below) - 2 * PAD
    y = height - PAD
    for ax, share in zip(axes, (3, 3, 2)):
        y -= title_h + free * share / 8
        ax.set_position(rect((width, height), left, y, width - left - right, free * share / 8))
        y -= below + PAD


def _attribution(ax, flow: Flow) -> None:
    """Horizontal bars of the direct logit attribution per source; sink and bias grey, apart at the bottom."""
    if flow.contrast is not None:
        values, title = flow.contrast.contributions, (f"contrastive attribution of logit {flow.contrast.text} = "
                                                      f"{flow.contrast.difference:+.3f}")
    else:
        a = flow.logits[0]
        values, title = a.contributions.astype(np.float64), f"direct logit attribution of {a.text!r} = {a.logit:+.3f}"
    content = list(range(1, flow.reached(flow.position)))
    order = sorted(content, key=lambda s: -abs(values[s]))[: 2 * MAX_NAMED]
    labels = [token_label(flow.sources[s]) for s in order] + [f"first {token_label(flow.sources[0])} (sink)", "<bias>"]
    heights = [values[s] for s in order] + [values[0], values[-1]]
    colours = ["#3b6ea5" if v >= 0 else "#e6550d" for v in heights[:-2]] + [SINK_COLOR, BIAS_COLOR]
    y = np.arange(len(labels))[::-1]
    ax.barh(y, heights, color=colours, hatch=None)
    ax.set_yticks(y, labels, fontsize=TICK_FONT)
    ax.axvline(0, color="#333333", linewidth=0.6)
    ax.set_xlabel("contribution to the logit" + (" difference" if flow.contrast is not None else ""))
    shown = len(order) < len(content)
    ax.set_title(title + (f" (top {len(order)} of {len(content)} content sources)" if shown else "")
                 + "; the sink and the bias apart", loc="left", fontsize=TITLE_FONT)
