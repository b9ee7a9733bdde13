"""Head-pattern scores from per-head attention maps, labels, and z-scores against a baseline.

Every score is a mean attention weight in [0, 1]: the weight a head puts on the
pattern's target key, averaged over the query rows where the pattern is
defined, then over probes. Rows are chosen so the targets never coincide with
the first position (a sink head does not also score as previous-token):

- ``previous_token``: key q-1, rows q >= 2
- ``first_token``: key 0 (BOS or the first token: the attention sink), rows q >= 2
- ``self``: key q, rows q >= 2
- ``position_skip``: key q-k for the best k in 2..MAX_SKIP (k reported), rows q >= k+1
- ``induction``: on a probe repeating a random block of n tokens, key q-n+1 (the
  token after the earlier copy of the current token), rows of the second copy

Pure functions: arrays in, scores out (see docs/heads.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmxray.errors import LmxrayError

PATTERNS = ("previous_token", "first_token", "self", "induction", "position_skip")
MAX_SKIP = 8  # position-skip offsets tried: 2..MAX_SKIP
MIXED_THRESHOLD = 0.4  # a head whose best pattern scores below this is labelled "mixed"
Z_STD_FLOOR = 0.02  # baseline spread never counts as smaller than this (random-init heads are near uniform)
Z_SIGNIFICANT = 3.0  # a head "has" a pattern when it scores >= MIXED_THRESHOLD and z >= this


@dataclass
class Probe:
    """One probe's per-head attention ``[layer, head, q_pos, k_pos]``; ``repeat``: the block length n of a
    repeated random sequence whose second copy ends the probe (0 for a natural prompt)."""

    attention: np.ndarray
    repeat: int = 0
    name: str = ""


@dataclass
class HeadScores:
    """Scores ``[layer, head]`` per pattern for one model, labels, and (optionally) a baseline comparison."""

    model: str
    layers: list[int]
    scores: dict[str, np.ndarray]  # pattern -> [layer, head]
    skip_k: np.ndarray  # [layer, head]: the best position-skip offset
    labels: np.ndarray  # [layer, head] of pattern names or "mixed"
    baseline: str | None = None
    baseline_mean: dict[str, np.ndarray] = field(default_factory=dict)  # pattern -> [layer, head]
    baseline_std: dict[str, np.ndarray] = field(default_factory=dict)
    z: dict[str, np.ndarray] = field(default_factory=dict)  # pattern -> [layer, head]

    @property
    def n_heads(self) -> int:
        return self.skip_k.shape[1]

    def top_heads(self, pattern: str, n: int = 5) -> list[tuple[int, int, float]]:
        """The n best (layer, head, score) for ``pattern``, best first."""
        return [(r["layer"], r["head"], r["score"]) for r in self.top_rows(pattern, n)]

    def top_rows(self, pattern: str, n: int = 5, heads: list[int] | None = None) -> list[dict]:
        """The n best heads for ``pattern`` (only ``heads`` when given) as dicts: layer, head, score, skip_k,
        label, and baseline mean and z when a baseline was added."""
        s = self.scores[_check_pattern(pattern)]
        allowed = np.zeros(s.shape, dtype=bool)
        allowed[:, list(range(self.n_heads)) if heads is None else heads] = True
        order = [i for i in np.argsort(-s, axis=None, kind="stable") if allowed.flat[i]][:n]
        rows = []
        for i in order:
            li, h = divmod(int(i), self.n_heads)
            row = {"layer": self.layers[li], "head": h, "score": float(s[li, h]), "skip_k": int(self.skip_k[li, h]),
                   "label": str(self.labels[li, h])}
            if self.z:
                row |= {"baseline": float(self.baseline_mean[pattern][li, h]), "z": float(self.z[pattern][li, h])}
            rows.append(row)
        return rows

    def heads_with(self, pattern: str, min_score: float = MIXED_THRESHOLD, min_z: float | None = None) -> list[tuple[int, int]]:
        """(layer, head) whose ``pattern`` score is at least ``min_score`` (and z at least ``min_z`` when given)."""
        keep = self.scores[_check_pattern(pattern)] >= min_score
        if min_z is not None:
            if not self.z:
                raise LmxrayError("these head scores have no baseline", "score with a baseline to filter by z")
            keep &= self.z[pattern] >= min_z
        return [(self.layers[li], int(h)) for li, h in zip(*np.nonzero(keep))]

    def label_counts(self) -> dict[int, dict[str, int]]:
        """Per model layer, how many heads carry each label."""
        names = (*PATTERNS, "mixed")
        return {layer: {n: int((self.labels[li] == n).sum()) for n in names} for li, layer in enumerate(self.layers)}

    def to_dict(self) -> dict:
        """Plain JSON-ready data: one entry per head, plus the thresholds used."""
        heads = []
        for li, layer in enumerate(self.layers):
            for h in range(self.n_heads):
                entry = {"layer": layer, "head": h, "label": str(self.labels[li, h]), "skip_k": int(self.skip_k[li, h]),
                         "scores": {p: round(float(self.scores[p][li, h]), 6) for p in PATTERNS}}
                if self.z:
                    entry["baseline"] = {p: round(float(self.baseline_mean[p][li, h]), 6) for p in PATTERNS}
                    entry["z"] = {p: round(float(self.z[p][li, h]), 3) for p in PATTERNS}
                heads.append(entry)
        return {"model": self.model, "baseline": self.baseline, "patterns": list(PATTERNS),
                "mixed_threshold": MIXED_THRESHOLD, "max_skip": MAX_SKIP, "z_std_floor": Z_STD_FLOOR, "heads": heads}


def pattern_scores(attention: np.ndarray, repeat: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Scores ``[layer, head]`` on one probe ``[layer, head, q, k]``, and the per-offset skip scores
    ``[MAX_SKIP - 1, layer, head]`` (offsets 2..MAX_SKIP; NaN where the probe is too short).

    ``induction`` is NaN unless ``repeat`` (the repeated block length) is set.
    """
    a = np.asarray(attention, dtype=np.float64)
    if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
        raise LmxrayError(f"attention must be [layer, head, q, k] with q == k, got shape {a.shape}",
                          "pass per-head maps of one prompt")
    t = a.shape[-1]
    if t < 3:
        raise LmxrayError(f"a probe of {t} tokens is too short to score heads", "use probes of 3 tokens or more")
    rows = np.arange(2, t)

    def diag(offset: int, r: np.ndarray) -> np.ndarray:
        """Mean weight on key q - offset over query rows r: [layer, head]."""
        return a[..., r, r - offset].mean(-1)

    scores = {"previous_token": diag(1, rows), "first_token": a[..., rows, 0].mean(-1), "self": diag(0, rows)}
    nan = np.full(a.shape[:2], np.nan)
    skips = np.stack([diag(k, np.arange(k + 1, t)) if k + 1 < t else nan for k in range(2, MAX_SKIP + 1)])
    if repeat:
        if not 2 <= repeat <= t // 2:
            raise LmxrayError(f"repeat length {repeat} does not fit a probe of {t} tokens",
                              "the probe must end with two copies of the repeated block")
        second = np.arange(t - repeat, t)
        scores["induction"] = diag(repeat - 1, second)
    else:
        scores["induction"] = nan
    return scores, skips


def score_heads(probes: list[Probe], model: str = "", layers: list[int] | None = None) -> HeadScores:
    """Average each pattern over the probes where it is defined; label each head; no baseline yet."""
    if not probes:
        raise LmxrayError("no probes to score heads on", "pass at least one probe")
    per_probe = [pattern_scores(p.attention, p.repeat) for p in probes]
    if not any(p.repeat for p in probes):
        raise LmxrayError("the probe set has no repeated sequence", "add a probe with repeat > 0 to score induction")
    scores = {name: _mean_defined(np.stack([s[name] for s, _ in per_probe])) for name in PATTERNS if name != "position_skip"}
    skips = _mean_defined(np.stack([k for _, k in per_probe]))  # [offset, layer, head]
    best = np.nanargmax(skips, axis=0)
    scores["position_skip"] = np.take_along_axis(skips, best[None], axis=0)[0]
    scores = {name: scores[name] for name in PATTERNS}
    n_layers = probes[0].attention.shape[0]
    return HeadScores(model=model, layers=list(layers if layers is not None else range(n_layers)), scores=scores,
                      skip_k=best + 2, labels=label_heads(scores))


def label_heads(scores: dict[str, np.ndarray]) -> np.ndarray:
    """The best-scoring pattern per head, or ``mixed`` when even that scores below MIXED_THRESHOLD.

    ``induction`` wins whenever it reaches the threshold: it can only show on the
    repeated probes, and induction heads rest on the first token elsewhere.
    """
    stacked = np.stack([scores[p] for p in PATTERNS])
    best = stacked.argmax(0)
    labels = np.array(PATTERNS, dtype=object)[best]
    labels[scores["induction"] >= MIXED_THRESHOLD] = "induction"
    labels[stacked.max(0) < MIXED_THRESHOLD] = "mixed"
    return labels


def with_baseline(scores: HeadScores, baselines: list[HeadScores], name: str) -> HeadScores:
    """Add the baseline's mean, spread and a z-score per head and pattern.

    Baseline heads are pooled per layer (over heads and baseline models: heads
    of a random init are exchangeable), so the z-score asks how unusual this
    head is for its layer at baseline: ``(score - mean) / max(std, Z_STD_FLOOR)``.
    """
    if not baselines:
        raise LmxrayError("no baseline scores given", "pass at least one baseline model")
    shape = scores.skip_k.shape
    for b in baselines:
        if b.skip_k.shape != shape or b.layers != scores.layers:
            raise LmxrayError(f"baseline {b.model} has {b.skip_k.shape} layers x heads, the model has {shape}",
                              "use a baseline of the same architecture")
    mean, std, z = {}, {}, {}
    for p in PATTERNS:
        pooled = np.concatenate([b.scores[p] for b in baselines], axis=1)  # [layer, heads x baselines]
        m = np.broadcast_to(pooled.mean(1, keepdims=True), shape).copy()
        s = np.broadcast_to(pooled.std(1, keepdims=True), shape).copy()
        mean[p], std[p] = m, s
        z[p] = (scores.scores[p] - m) / np.maximum(s, Z_STD_FLOOR)
    scores.baseline, scores.baseline_mean, scores.baseline_std, scores.z = name, mean, std, z
    return scores


def _mean_defined(stacked: np.ndarray) -> np.ndarray:
    """Mean over axis 0 of the entries that are defined (not NaN); NaN where none is."""
    defined = ~np.isnan(stacked)
    count = defined.sum(0)
    total = np.where(defined, stacked, 0.0).sum(0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _check_pattern(pattern: str) -> str:
    if pattern not in PATTERNS:
        raise LmxrayError(f"unknown pattern '{pattern}'", f"choose from {', '.join(PATTERNS)}")
    return pattern
