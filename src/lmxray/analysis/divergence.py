"""Divergence between two prompts' attention rows, per layer: pure numpy, no model.

The inputs are prediction-position attention distributions over key positions,
one per layer. See docs/sweep.md for the definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np

ALIGNMENTS = ("tokens", "start", "end")
DEFAULT_ALIGNMENT = "tokens"
DEFAULT_JS_THRESHOLD = 0.05
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0


def normalise(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1 (e.g. head-summed attention, which sums to n_heads); all-zero rows stay zero."""
    rows = np.asarray(rows, dtype=np.float64)
    total = rows.sum(-1, keepdims=True)
    return np.divide(rows, total, out=np.zeros_like(rows), where=total > 0)


def align(p: np.ndarray, q: np.ndarray, how: str = "start", ids=None) -> tuple[np.ndarray, np.ndarray]:
    """Bring two prompts' [..., k_pos] rows to one width, so that JS compares like with like.

    ``tokens`` (needs ``ids``, the two prompts' token ids) sums each row over the
    aligned units of ``token_units``; ``start`` lines up position 0 with position 0
    (the shorter row padded with zero mass at its end); ``end`` lines up the
    prediction positions (padded at the start).
    """
    if how not in ALIGNMENTS:
        raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {how!r}")
    if how == "tokens":
        if ids is None:
            raise ValueError("token alignment needs the two prompts' token ids")
        units_p, units_q, n_units = token_units(*ids)
        return unit_mass(p, units_p, n_units), unit_mass(q, units_q, n_units)
    width = max(p.shape[-1], q.shape[-1])

    def pad(a):
        missing = [(0, 0)] * (a.ndim - 1) + [(0, width - a.shape[-1]) if how == "start" else (width - a.shape[-1], 0)]
        return np.pad(np.asarray(a, dtype=np.float64), missing)

    return pad(p), pad(q)


def token_units(a_ids, b_ids) -> tuple[np.ndarray, np.ndarray, int]:
    """The aligned unit of every token of two prompts, and the unit count.

    Matching blocks of token ids (difflib.SequenceMatcher, no junk heuristic) pair
    up token by token, one unit per shared token; each differing span is one unit
    on both sides, and a span on one side only is a unit that is empty on the other.
    """
    a_ids, b_ids = [int(t) for t in a_ids], [int(t) for t in b_ids]
    units_a, units_b = np.zeros(len(a_ids), np.int64), np.zeros(len(b_ids), np.int64)
    n = 0
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a_ids, b_ids, autojunk=False).get_opcodes():
        if tag == "equal":
            units_a[i1:i2] = units_b[j1:j2] = np.arange(n, n + i2 - i1)
            n += i2 - i1
        else:
            units_a[i1:i2] = units_b[j1:j2] = n
            n += 1
    return units_a, units_b, n


def unit_mass(rows: np.ndarray, units: np.ndarray, n_units: int) -> np.ndarray:
    """[..., k_pos] rows summed into [..., n_units]: position k adds to unit ``units[k]``."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.shape[-1] != len(units):
        raise ValueError(f"rows have {rows.shape[-1]} key positions but the prompt has {len(units)} tokens")
    return rows @ np.eye(n_units)[units]


def differing_spans(a_ids, b_ids) -> list[tuple[list[int], list[int]]]:
    """The (a tokens, b tokens) of every span where two prompts differ, in order; empty for equal prompts."""
    a_ids, b_ids = [int(t) for t in a_ids], [int(t) for t in b_ids]
    return [(a_ids[i1:i2], b_ids[j1:j2]) for tag, i1, i2, j1, j2
            in SequenceMatcher(None, a_ids, b_ids, autojunk=False).get_opcodes() if tag != "equal"]


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen–Shannon divergence in bits along the last axis: 0 for equal rows, 1 for disjoint supports."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)
    return np.clip(0.5 * _kl_bits(p, m) + 0.5 * _kl_bits(q, m), 0.0, 1.0)


def _kl_bits(p: np.ndarray, m: np.ndarray) -> np.ndarray:
    """KL(p || m) in bits, with 0 log 0 = 0 (m > 0 wherever p > 0 because m is the midpoint)."""
    ratio = np.divide(p, m, out=np.ones_like(p), where=p > 0)
    return (p * np.log2(ratio)).sum(-1)


def first_share(rows: np.ndarray) -> np.ndarray:
    """Share of each normalised row on key position 0 (the BOS token when the tokenizer adds one)."""
    return normalise(rows)[..., 0]


@dataclass(frozen=True)
class CurveMetrics:
    """Summary of one divergence-by-layer curve."""

    first_layer: int | None  # first layer whose JS exceeds the threshold; None if none does
    peak_layer: int  # layer of the largest JS (the first such layer on ties)
    peak: float
    area: float  # trapezoidal area under the curve, unit spacing between layers
    mean: float


def curve_metrics(curve: np.ndarray, threshold: float = DEFAULT_JS_THRESHOLD) -> CurveMetrics:
    """First divergence layer, peak layer and value, area and mean of a JS-by-layer curve."""
    curve = np.asarray(curve, dtype=np.float64)
    if curve.ndim != 1 or curve.size == 0:
        raise ValueError(f"a divergence curve must be a non-empty 1-D array, got shape {curve.shape}")
    above = np.flatnonzero(curve > threshold)
    area = float(((curve[1:] + curve[:-1]) * 0.5).sum())
    return CurveMetrics(
        first_layer=int(above[0]) if above.size else None,
        peak_layer=int(np.argmax(curve)),
        peak=float(curve.max()),
        area=area,
        mean=float(curve.mean()),
    )


def bootstrap_ci(values, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED,
                 level: float = 0.95) -> tuple[float, float, float]:
    """Mean and percentile bootstrap interval of the mean; NaNs are dropped, and no values give NaNs."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(samples, x.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(x.mean()), float(low), float(high)


def category_summary(categories, first_layer, peak_layer, area, mean_js) -> list[dict]:
    """Per category (and ``all``): pair count, bootstrap means of peak layer, first divergence layer and area.

    ``first_layer`` holds NaN for pairs that never cross the threshold; they are
    left out of its mean and counted in ``n_never``.
    """
    categories = np.asarray(categories, dtype=object)
    columns = {name: np.asarray(v, dtype=np.float64) for name, v in
               (("peak_layer", peak_layer), ("first_layer", first_layer), ("area", area), ("mean_js", mean_js))}
    rows = []
    for name in [*dict.fromkeys(categories.tolist()), "all"]:
        keep = np.ones(len(categories), bool) if name == "all" else categories == name
        row = {"category": name, "n_pairs": int(keep.sum()), "n_never": int(np.isnan(columns["first_layer"][keep]).sum())}
        for metric in ("peak_layer", "first_layer", "area"):
            mean, low, high = bootstrap_ci(columns[metric][keep])
            row.update({metric: mean, f"{metric}_lo": low, f"{metric}_hi": high})
        row["mean_js"] = float(columns["mean_js"][keep].mean()) if keep.any() else float("nan")
        rows.append(row)
    return rows


def bos_profile(categories, intended: np.ndarray, contradictory: np.ndarray) -> tuple[list[dict], dict[str, int]]:
    """Mean first-position share per category (and ``all``) and layer, and each category's bottleneck layer.

    ``intended``/``contradictory``: [pair, layer] shares. The bottleneck is the
    layer where the mean over both prompts peaks.
    """
    categories = np.asarray(categories, dtype=object)
    intended, contradictory = np.asarray(intended, np.float64), np.asarray(contradictory, np.float64)
    rows, bottleneck = [], {}
    for name in [*dict.fromkeys(categories.tolist()), "all"]:
        keep = np.ones(len(categories), bool) if name == "all" else categories == name
        a, b = intended[keep].mean(0), contradictory[keep].mean(0)
        both = 0.5 * (a + b)
        bottleneck[name] = int(np.argmax(both))
        rows += [{"category": name, "layer": layer, "bos_share_intended": float(a[layer]),
                  "bos_share_contradictory": float(b[layer]), "bos_share": float(both[layer])}
                 for layer in range(len(both))]
    return rows, bottleneck


def mean_curves(categories, curves: np.ndarray) -> dict[str, np.ndarray]:
    """Mean [layer] curve per category, from [pair, layer] curves, in order of first appearance."""
    categories = np.asarray(categories, dtype=object)
    curves = np.asarray(curves, dtype=np.float64)
    return {name: curves[categories == name].mean(0) for name in dict.fromkeys(categories.tolist())}


def length_split(categories, matched, mean_js) -> dict:
    """Mean JS of length-matched and length-mismatched pairs and two ratios (mismatched over matched).

    ``ratio`` pools all pairs; ``ratio_within_categories`` keeps the categories that
    hold both kinds and weights each one's matched mean by its mismatched pairs, so a
    category that diverges more and holds more mismatched pairs does not inflate it.
    """
    categories = np.asarray(categories, dtype=object)
    matched, js = np.asarray(matched, dtype=bool), np.asarray(mean_js, dtype=np.float64)

    def mean(keep):
        return float(js[keep].mean()) if keep.any() else float("nan")

    row = {"n_matched": int(matched.sum()), "n_mismatched": int((~matched).sum()),
           "mean_js_matched": mean(matched), "mean_js_mismatched": mean(~matched)}
    row["ratio"] = _ratio(row["mean_js_mismatched"], row["mean_js_matched"])
    both = [c for c in dict.fromkeys(categories.tolist())
            if (matched & (categories == c)).any() and (~matched & (categories == c)).any()]
    keep = np.isin(categories, both) & ~matched
    weights = np.array([(keep & (categories == c)).sum() for c in both], dtype=np.float64)
    baseline = float(weights @ [mean(matched & (categories == c)) for c in both] / weights.sum()) if both else float("nan")
    row["ratio_within_categories"] = _ratio(mean(keep), baseline)
    return row


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 and not np.isnan(a) else float("nan")
