"""Percentile-bootstrap bands for mean curves over groups of rows: pure numpy, seeded."""

from __future__ import annotations

import numpy as np

BAND_RESAMPLES = 1000  # bootstrap resamples of each category's pairs
BAND_SEED = 0
BAND_LEVEL = 0.95


def curve_bands(labels, curves, n_resamples: int = BAND_RESAMPLES, seed: int = BAND_SEED,
                level: float = BAND_LEVEL) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per label (first-appearance order): the mean [layer] curve of its rows and a ``level`` percentile band.

    The band resamples the label's rows (pairs) with replacement ``n_resamples`` times
    (one generator seeded with ``seed``, labels drawn in order) and takes per-layer percentiles of the resampled means.
    """
    labels = np.asarray(labels, dtype=object)
    curves = np.asarray(curves, dtype=np.float64)
    rng = np.random.default_rng(seed)
    tail = 100 * (1 - level) / 2
    bands = {}
    for name in dict.fromkeys(labels.tolist()):
        rows = curves[labels == name]  # [pair, layer]
        picks = rng.integers(0, len(rows), size=(n_resamples, len(rows)))
        means = rows[picks].mean(1)  # [resample, layer]
        lo, hi = np.percentile(means, [tail, 100 - tail], axis=0)
        bands[name] = (rows.mean(0), lo, hi)
    return bands
