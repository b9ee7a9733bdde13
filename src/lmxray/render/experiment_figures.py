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


def divergence_curves(curves: dict[str, np.ndarray], threshold: float, path: Path, title: str) -> None:
    """Mean JS divergence per layer, one line per category, with the first-divergence threshold."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, curve in curves.items():
        ax.plot(np.arange(len(curve)), curve, marker="o", markersize=3, label=name)
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.set(xlabel="layer", ylabel="JS divergence (bits)", title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
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


def profile_variance(variance: dict[str, np.ndarray], path: Path, title: str) -> None:
    """Variance across samples of each layer's absolute mean delta, per corpus (log scale)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, var in variance.items():
        ax.plot(np.arange(len(var)), var, marker="o", markersize=3, label=name)
    ax.set(xlabel="layer", ylabel="variance of mean |Δ| across samples", title=title)
    if all(np.all(v > 0) for v in variance.values()):
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)
