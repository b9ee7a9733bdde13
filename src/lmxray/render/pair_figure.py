"""One sweep pair's depth profile (seed 003): JS divergence per layer above, first-position share per layer below."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from lmxray.experiments.pair_depth import PairDepth
from lmxray.render.figures import token_label


def pair_depth_figure(depth: PairDepth) -> Figure:
    """Two panels sharing the layer axis: JS (threshold, first and peak layer marked) and both prompts' BOS share."""
    layers = np.arange(len(depth.js))
    fig = Figure(figsize=(8, 6), layout="constrained")
    js_ax, bos_ax = fig.subplots(2, 1, sharex=True)
    js_ax.plot(layers, depth.js, marker="o", markersize=3, color="#1f77b4", label="JS divergence")
    js_ax.axhline(depth.threshold, color="grey", linestyle="--", linewidth=1, label=f"threshold {depth.threshold:g}")
    peak = int(np.argmax(depth.js))
    js_ax.plot([peak], [depth.js[peak]], marker="v", color="#d62728", linestyle="none",
               label=f"peak L{peak} ({depth.js[peak]:.3f})")
    first = depth.pair.get("first_layer")
    if first is not None:
        js_ax.axvline(first, color="#2ca02c", linewidth=1, label=f"first above threshold: L{first}")
    js_ax.set(ylabel="JS divergence (bits)", ylim=(0, max(float(depth.js.max()) * 1.15, depth.threshold * 1.5)))
    js_ax.set_title(f"mean JS {float(depth.js.mean()):.4f}; attention aligned by {depth.align}", fontsize=9)
    js_ax.legend(fontsize=7, loc="upper right")
    for side, share, color in (("intended", depth.bos_intended, "#2ca02c"),
                               ("contradictory", depth.bos_contradictory, "#e6550d")):
        top1 = depth.pair.get(f"top1_{side}")
        prob = depth.pair.get(f"prob_{side}")
        said = f" → {token_label(top1)} ({prob:.2f})" if top1 is not None and prob is not None else ""
        bos_ax.plot(layers, share, marker="o", markersize=3, color=color, label=f"{side}{said}")
    bos_ax.set(xlabel="layer", ylabel="first-position share", ylim=(0, 1.02))
    bos_ax.set_title("share of the prediction position's attention on position 0 (BOS, or the first token)", fontsize=9)
    bos_ax.legend(fontsize=7, loc="lower right")
    for ax in (js_ax, bos_ax):
        ax.grid(alpha=0.3)
    fig.suptitle(f"{depth.model}: pair {depth.id} ({depth.category})", fontsize=11)
    return fig
