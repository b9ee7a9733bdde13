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
    """Panels [row: model (and baseline), column: pattern] of scores on the shared 0..1 scale."""
    rows = [("", scores.scores)] + ([(f"baseline: {scores.baseline} (mean)", scores.baseline_mean)]
                                   if scores.baseline else [])
    n_layers, n_heads = scores.skip_k.shape
    height = max(2.0, 0.12 * n_layers + 1.2)
    fig = Figure(figsize=(PANEL_INCHES * len(patterns) + 1.2, height * len(rows) + 0.9), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rows), len(patterns), squeeze=False))
    image = None
    for r, (row_name, data) in enumerate(rows):
        for c, pattern in enumerate(patterns):
            ax = axes[r, c]
            image = ax.imshow(np.nan_to_num(data[pattern]), vmin=0.0, vmax=1.0, cmap=CMAP, origin="lower",
                              aspect="auto", interpolation="nearest")
            title = pattern.replace("_", " ") + (" (best k)" if pattern == "position_skip" else "")
            ax.set_title(f"{title}\n{row_name}" if row_name else title, fontsize=9)
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
    fig.colorbar(image, ax=axes, shrink=0.8, label="score: mean attention weight on the pattern's target (0-1)")
    ring = f"; red rings: score >= {MIXED_THRESHOLD} and z >= {Z_SIGNIFICANT:g}" if scores.z else ""
    fig.suptitle(f"{scores.model}: head pattern scores, one colour scale 0-1 for every panel{ring}", fontsize=10)
    return fig
