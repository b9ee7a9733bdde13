"""Figures for sweeps and profiles (matplotlib, Agg backend): plots of numbers computed elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmxray.experiments.store import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip("."), dpi=120, bbox_inches="tight"))
    _pyplot().close(fig)


def divergence_curves(bands: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], threshold: float, path: Path,
                      title: str, band_note: str = "") -> None:
    """One panel per category: its mean JS per layer with a bootstrap band, the other categories faint behind it."""
    plt = _pyplot()
    n = len(bands)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.0 * rows + 0.6), sharex=True, sharey=True,
                             squeeze=False, layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, (mean, lo, hi)) in enumerate(bands.items()):
        ax = axes.flat[i]
        layers = np.arange(len(mean))
        for other, (m, _, _) in bands.items():
            if other != name:
                ax.plot(layers, m, color="#c8c8c8", linewidth=0.8, zorder=1)
        color = colors[i % len(colors)]
        ax.fill_between(layers, lo, hi, color=color, alpha=0.25, linewidth=0, zorder=2, label="bootstrap band")
        ax.plot(layers, mean, marker="o", markersize=2.5, color=color, zorder=3, label="mean over pairs")
        ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7, loc="upper right")
    for ax in axes[-1]:
        ax.set_xlabel("layer")
    for ax in axes[:, 0]:
        ax.set_ylabel("JS divergence (bits)")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(title + (f"\n{band_note}" if band_note else ""), fontsize=10)
    _save(fig, path)


def bos_share_profile(profiles: dict[str, np.ndarray], bottleneck: dict[str, int], path: Path, title: str) -> None:
    """First-position (BOS) share of the prediction row per layer and category; markers at each bottleneck."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, share in profiles.items():
        line, = ax.plot(np.arange(len(share)), share, label=f"{name} (peak L{bottleneck[name]})")
        ax.plot([bottleneck[name]], [share[bottleneck[name]]], marker="v", color=line.get_color())
    ax.set(xlabel="layer", ylabel="first-position share", ylim=(0, 1), title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)


def profile_abs_mean(stats: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    """Absolute mean of each layer's residual delta ± its standard deviation across samples, per corpus."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, (mean, std) in stats.items():
        layers = np.arange(len(mean))
        line, = ax.plot(layers, mean, marker="o", markersize=3, label=name)
        ax.fill_between(layers, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    ax.set(xlabel="layer", ylabel="mean |Δ residual|", title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)


def profile_variance(variance: dict[str, np.ndarray], cv: dict[str, np.ndarray], path: Path, title: str) -> None:
    """Left: variance across samples of each layer's mean |Δ| (log scale); right: its coefficient of variation."""
    plt = _pyplot()
    fig, (raw, rel) = plt.subplots(1, 2, figsize=(13, 4.5), layout="constrained")
    for name, var in variance.items():
        line, = raw.plot(np.arange(len(var)), var, marker="o", markersize=3, label=name)
        rel.plot(np.arange(len(cv[name])), cv[name], marker="o", markersize=3, color=line.get_color(), label=name)
    raw.set(xlabel="layer", ylabel="variance of mean |Δ| across samples", title="raw variance")
    if all(np.all(v > 0) for v in variance.values()):
        raw.set_yscale("log")
    rel.set(xlabel="layer", ylabel="std / mean of mean |Δ| across samples",
            title="relative: coefficient of variation (spread over size)")
    for ax in (raw, rel):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    _save(fig, path)


def profile_signed_mean(stats: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    """One panel per corpus: the signed mean of each layer's delta ± its std across samples, zero marked."""
    plt = _pyplot()
    n = len(stats)
    cols = min(n, 2)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.2 * rows), sharex=True, sharey=True,
                             squeeze=False, layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, (mean, std)) in enumerate(stats.items()):
        ax = axes.flat[i]
        layers = np.arange(len(mean))
        color = colors[i % len(colors)]
        ax.fill_between(layers, mean - std, mean + std, color=color, alpha=0.2, label="± std across samples")
        ax.plot(layers, mean, marker="o", markersize=3, color=color, label="mean over samples")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    for ax in axes[-1]:
        ax.set_xlabel("layer")
    for ax in axes[:, 0]:
        ax.set_ylabel("mean of Δ (signed)")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(title)
    _save(fig, path)
