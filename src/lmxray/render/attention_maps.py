"""The per-head attention-map grid: sampled layers x heads, one colour scale for every panel.

Each panel is one head's post-softmax map [q_pos, k_pos] as stored in the trace;
positions a query cannot see (k > q) are greyed, not drawn as zero. Every panel,
the random-init twin's included, shares one linear colour scale, and the figure
states it, so shades are comparable across panels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from lmxray.errors import LmxrayError
from lmxray.render.figures import TICK_SPACE, rect, resolve_choice, sample_indices, text_inches, token_label
from lmxray.trace.types import Trace

DEFAULT_GRID = 3  # layers and heads sampled when none are chosen: at most 3 x 3 panels
MAX_TICK_LABELS = 40  # longer prompts label every n-th position
CMAP = "Blues"
MASKED_COLOR = "#e6e6e6"
TICK_FONT, TITLE_FONT, SUPTITLE_FONT, SCALE_FONT = 7, 9, 10, 10  # points
PER_HEAD_FIX = "trace again keeping per-head attention (`lmxray trace ... --per-head`, CapturePlan(per_head=True))"


@dataclass(frozen=True)
class MapSelection:
    """Model layer and head indices of the grid's rows and columns."""

    layers: list[int]
    heads: list[int]


def select_maps(trace: Trace, layers: list[int] | None = None, heads: list[int] | None = None) -> MapSelection:
    """The panels to draw: chosen layers/heads (checked against the model and the trace) or an even sample."""
    if trace.attention_heads is None:
        raise LmxrayError("the trace has no per-head attention, which the attention maps need", PER_HEAD_FIX)
    capture_fix = "choose from those, or " + PER_HEAD_FIX.replace("keeping", "capturing them, with")
    n_layers, n_heads = trace.model.n_layers, trace.model.n_heads
    if layers is None:
        layers = [trace.layers[i] for i in sample_indices(len(trace.layers), DEFAULT_GRID)]
    else:
        layers = resolve_choice(layers, n_layers, trace.layers, "layer", "--layers", capture_fix)
    if heads is None:
        heads = [trace.heads[i] for i in sample_indices(len(trace.heads), DEFAULT_GRID)]
    else:
        heads = resolve_choice(heads, n_heads, trace.heads, "head", "--heads", capture_fix)
    return MapSelection(layers, heads)


def head_map(trace: Trace, layer: int, head: int) -> np.ndarray:
    """One head's stored map [q_pos, k_pos] (model layer and head indices)."""
    return np.asarray(trace.attention_heads[trace.layers.index(layer), trace.heads.index(head)], dtype=np.float64)


def attention_map_grid(trace: Trace, selection: MapSelection, *, twin: Trace | None = None,
                       vmax: float | None = 1.0) -> Figure:
    """The grid of ``selection``'s maps; with ``twin`` (the random-init twin's trace) its maps sit to the right.

    ``vmax`` is the top of the shared colour scale (0 is the bottom); None takes
    the largest weight over every panel drawn.
    """
    traces = [trace] if twin is None else [trace, twin]
    if twin is not None and twin.token_ids != trace.token_ids:
        raise LmxrayError("the twin trace has other tokens than the trace", "trace the same prompt with both models")
    if twin is not None:
        select_maps(twin, selection.layers, selection.heads)  # the twin must hold the same panels
    maps = [[[head_map(t, l, h) for h in selection.heads] for l in selection.layers] for t in traces]
    top = float(np.nanmax(maps)) if vmax is None else float(vmax)
    if not top > 0:
        raise LmxrayError(f"the colour scale's top must be > 0, got {top}", "pass --vmax 1 or --vmax auto")
    n_rows, n_cols = len(selection.layers), len(selection.heads) * len(traces)
    n_tok = trace.n_tokens
    step = max(1, -(-n_tok // MAX_TICK_LABELS))
    ticks = list(range(0, n_tok, step))
    labels = [token_label(trace.tokens[i]) for i in ticks]
    names = trace.model.name if twin is None else f"{trace.model.name} (left) vs {twin.model.name} (right)"
    title = (f"{names}: {token_label(trace.prompt)[:90]}\nrows: query position (from), "
             f"columns: key position (attended to); grey: masked (future)")
    scale = f"attention probability: one linear scale 0 to {top:.3g} for all {n_rows * n_cols} panels"
    layout = _GridLayout(n_rows, n_cols, len(selection.heads), min(max(2.2, 0.16 * n_tok), 6.0), labels, title)
    fig = Figure(figsize=layout.size)
    image = None
    for ti, (t, grid) in enumerate(zip(traces, maps)):
        who = "" if twin is None else ("trained " if ti == 0 else "random init ")
        for r, layer in enumerate(selection.layers):
            for c, head in enumerate(selection.heads):
                col = ti * len(selection.heads) + c
                ax = fig.add_axes(layout.panel(r, col))
                image = _panel(ax, grid[r][c], top)
                ax.set_title(f"{who}L{layer} H{head}", fontsize=TITLE_FONT)
                # token labels on the outer panels only: every panel has the same axes, as the grid is aligned
                ax.set_xticks(ticks if r == n_rows - 1 else [], labels if r == n_rows - 1 else [], rotation=90,
                              fontsize=TICK_FONT)
                ax.set_yticks(ticks if col == 0 else [], labels if col == 0 else [], fontsize=TICK_FONT)
    colorbar = fig.colorbar(image, cax=fig.add_axes(layout.colorbar()))
    colorbar.set_label(layout.wrap_scale(scale), fontsize=SCALE_FONT)
    fig.suptitle(title, fontsize=SUPTITLE_FONT, y=1 - layout.PAD / layout.size[1], va="top")
    return fig


class _GridLayout:
    """Fixed positions (figure fractions) of a regular panel grid, its colour bar and titles, from measured labels.

    The grid is regular and every label is known before drawing, so the margins are computed once here
    instead of by a layout engine measuring every tick label of every panel at each save.
    """

    PAD = 0.12  # inches around the figure's edge and between neighbouring panels
    GROUP_GAP = 0.35  # inches between the model's panels and the twin's
    BAR_GAP, BAR_WIDTH = 0.3, 0.18  # the colour bar: inches from the last panel, its width

    def __init__(self, n_rows: int, n_cols: int, group: int, side: float, labels: list[str], title: str):
        self.n_rows, self.group, self.side = n_rows, group, side
        label_w = text_inches(labels, TICK_FONT)[0] + TICK_SPACE
        self.title_h = text_inches(["L0 H0"], TITLE_FONT)[1] + 6 / 72  # a panel title and its 6 pt pad
        suptitle_w, suptitle_h = text_inches([title], SUPTITLE_FONT)
        self.left, self.bottom = self.PAD + label_w, self.PAD + label_w
        self.top = self.PAD + suptitle_h + self.PAD + self.title_h
        bar_labels = text_inches(["0.00"], SCALE_FONT)[0] + TICK_SPACE + text_inches(["x"], SCALE_FONT)[1] * 2
        grid_w = n_cols * side + (n_cols - 1) * self.PAD + (self.GROUP_GAP - self.PAD) * (n_cols > group)
        self.grid_h = n_rows * side + (n_rows - 1) * (self.PAD + self.title_h)
        width = self.left + grid_w + self.BAR_GAP + self.BAR_WIDTH + bar_labels + self.PAD
        self.left += max(0.0, suptitle_w + 2 * self.PAD - width) / 2  # a long title widens the figure, grid centred
        self.size = (max(width, suptitle_w + 2 * self.PAD), self.bottom + self.grid_h + self.top)
        self.grid_right = self.left + grid_w

    def panel(self, row: int, col: int) -> list[float]:
        """[left, bottom, width, height] of panel (row, col), row 0 at the top."""
        x = self.left + col * (self.side + self.PAD) + (self.GROUP_GAP - self.PAD) * (col >= self.group)
        y = self.bottom + (self.n_rows - 1 - row) * (self.side + self.PAD + self.title_h)
        return rect(self.size, x, y, self.side, self.side)

    def colorbar(self) -> list[float]:
        """The colour bar beside the grid, as tall as the panels' span."""
        return rect(self.size, self.grid_right + self.BAR_GAP, self.bottom, self.BAR_WIDTH, self.grid_h)

    def wrap_scale(self, label: str) -> str:
        """The colour bar's label, on two lines when one is longer than the bar."""
        if text_inches([label], SCALE_FONT)[0] <= self.grid_h:
            return label
        head, tail = label.split(": ", 1)
        return f"{head}:\n{tail}"


def _panel(ax, weights: np.ndarray, top: float):
    """One map; future positions (k > q) masked so they read as 'cannot attend', not 'weight 0'."""
    n = weights.shape[0]
    future = np.triu(np.ones((n, n), dtype=bool), 1)
    cmap = _cmap()
    return ax.imshow(np.ma.array(weights, mask=future), cmap=cmap, vmin=0.0, vmax=top, aspect="equal",
                     interpolation="nearest")


def _cmap():
    import matplotlib

    return matplotlib.colormaps[CMAP].with_extremes(bad=MASKED_COLOR)
