"""Head-score figure: one panel per pattern (layers x heads), one colour scale for every panel.

With a baseline, a second row shows the baseline's mean scores on the same
scale, and heads with score >= MIXED_THRESHOLD and z >= Z_SIGNIFICANT are ringed.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from lmxray.analysis.heads import MIXED_THRESHOLD, Z_SIGNIFICANT, HeadScores

CMAP = "viridis"
PANEL_INCHES = 2.6


def head_scores_figure(scores: HeadScores, patterns: list[str]) -> Figure:
    """Panels [row: model (and baseline), column: pattern] of scores on the shared 0..1 scale; one title per row."""
    rows = [(f"{scores.model} (the model)", scores.scores)]
    if scores.baseline:
        rows.append((f"baseline: {scores.baseline} (mean score)", scores.baseline_mean))
    n_layers, n_heads = scores.skip_k.shape
    height = max(2.0, 0.12 * n_layers + 1.2)
    fig = Figure(figsize=(PANEL_INCHES * len(patterns) + 1.2, (height + 0.4) * len(rows) + 0.9), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(len(rows), 1))
    image, all_axes = None, []
    for r, (row_name, data) in enumerate(rows):
        subfigs[r].suptitle(row_name, fontsize=10, fontweight="bold")
        axes = np.atleast_1d(subfigs[r].subplots(1, len(patterns), squeeze=False)[0])
        all_axes.extend(axes)
        for c, pattern in enumerate(patterns):
            ax = axes[c]
            image = ax.imshow(np.nan_to_num(data[pattern]), vmin=0.0, vmax=1.0, cmap=CMAP, origin="lower",
                              aspect="auto", interpolation="nearest")
            ax.set_title(pattern.replace("_", " ") + (" (best k)" if pattern == "position_skip" else ""), fontsize=9)
            ax.set_xticks(range(n_heads))
            ax.set_xticklabels([str(h) for h in range(n_heads)], fontsize=6)
            ticks = list(range(0, n_layers, max(1, n_layers // 8)))
            ax.set_yticks(ticks)
            ax.set_yticklabels([str(scores.layers[i]) for i in ticks], fontsize=6)
            ax.set_xlabel("head", fontsize=7)
            if c == 0:
                ax.set_ylabel("layer", fontsize=7)
            if r == 0 and scores.z:
                ys, xs = np.nonzero((scores.z[pattern] >= Z_SIGNIFICANT) & (scores.scores[pattern] >= MIXED_THRESHOLD))
                ax.scatter(xs, ys, s=28, facecolors="none", edgecolors="red", linewidths=1.0)
        subfigs[r].colorbar(image, ax=list(axes), shrink=0.9, label="score (0-1)")
    ring = f"; red rings: score >= {MIXED_THRESHOLD} and z >= {Z_SIGNIFICANT:g}" if scores.z else ""
    fig.suptitle(f"head pattern scores: mean attention weight on the pattern's target, one colour scale 0-1 "
                 f"for every panel{ring}", fontsize=10)
    return fig
