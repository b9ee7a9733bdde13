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
from lmxray.render.figures import resolve_choice, sample_indices, token_label
from lmxray.trace.types import Trace

DEFAULT_GRID = 3  # layers and heads sampled when none are chosen: at most 3 x 3 panels
MAX_TICK_LABELS = 40  # longer prompts label every n-th position
CMAP = "Blues"
MASKED_COLOR = "#e6e6e6"
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
    side = min(max(2.2, 0.16 * n_tok), 6.0)
    fig = Figure(figsize=(side * n_cols + 1.6, side * n_rows + 1.4), layout="constrained")
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    labels = [token_label(t) for t in trace.tokens]
    step = max(1, -(-n_tok // MAX_TICK_LABELS))
    image = None
    for ti, (t, grid) in enumerate(zip(traces, maps)):
        for r, layer in enumerate(selection.layers):
            for c, head in enumerate(selection.heads):
                ax = axes[r, ti * len(selection.heads) + c]
                image = _panel(ax, grid[r][c], top)
                who = "" if twin is None else ("trained " if ti == 0 else "random init ")
                ax.set_title(f"{who}L{layer} H{head}", fontsize=9)
                ticks = range(0, n_tok, step)
                ax.set_xticks(ticks, [labels[i] for i in ticks] if r == n_rows - 1 else [], rotation=90, fontsize=7)
                ax.set_yticks(ticks, [labels[i] for i in ticks] if c == 0 and ti == 0 else [], fontsize=7)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8,
                 label=f"attention probability: one linear scale 0 to {top:.3g} for all {axes.size} panels")
    names = trace.model.name if twin is None else f"{trace.model.name} (left) vs {twin.model.name} (right)"
    fig.suptitle(f"{names}: {token_label(trace.prompt)[:90]}\nrows: query position (from), "
                 f"columns: key position (attended to); grey: masked (future)", fontsize=10)
    return fig


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
