"""Per-layer residual-delta statistics for corpus profiles: pure numpy, no model.

A layer's delta is what it adds to the residual stream: its output minus its
input. See docs/profile.md for the definitions.
"""

from __future__ import annotations

import numpy as np

SAMPLE_STATS = ("mean", "abs_mean", "rel_size")  # per sample and layer
DEFAULT_TOP_LAYERS = 5


def residual_deltas(embedding: np.ndarray, residuals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Layer inputs and deltas from the residual entering layer 0 [pos, d] and each layer's output [layer, pos, d]."""
    outputs = np.asarray(residuals, dtype=np.float64)
    inputs = np.concatenate([np.asarray(embedding, dtype=np.float64)[None], outputs[:-1]], axis=0)
    return inputs, outputs - inputs


def sample_stats(embedding: np.ndarray, residuals: np.ndarray) -> dict[str, np.ndarray]:
    """Per layer: mean and mean absolute value of the delta's elements, and mean over positions of ‖Δ‖/‖h‖.

    ``h`` is the layer's input; positions whose input is the zero vector count as 0.
    """
    inputs, delta = residual_deltas(embedding, residuals)
    delta_norm = np.linalg.norm(delta, axis=-1)  # [layer, pos]
    input_norm = np.linalg.norm(inputs, axis=-1)
    ratio = np.divide(delta_norm, input_norm, out=np.zeros_like(delta_norm), where=input_norm > 0)
    return {
        "mean": delta.mean(axis=(1, 2)),
        "abs_mean": np.abs(delta).mean(axis=(1, 2)),
        "rel_size": ratio.mean(axis=1),
    }


def across_samples(values: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, standard deviation and variance over samples (axis 0) of [sample, layer] values (ddof 0)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(f"expected [sample, layer] values with at least one sample, got shape {values.shape}")
    return {"mean": values.mean(axis=0), "std": values.std(axis=0), "var": values.var(axis=0)}


def coefficient_of_variation(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """std / |mean| per layer: the spread relative to the size (NaN where the mean is 0)."""
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    return np.divide(std, np.abs(mean), out=np.full_like(std, np.nan), where=mean != 0)


def most_sensitive_layers(variance: np.ndarray, k: int = DEFAULT_TOP_LAYERS) -> list[int]:
    """Layers ordered by decreasing variance across samples (most input-sensitive first), ``k`` of them."""
    values = np.nan_to_num(np.asarray(variance, dtype=np.float64), nan=-np.inf)  # NaN (no ratio) ranks last
    order = np.argsort(-values, kind="stable")
    return [int(i) for i in order[:k]]
