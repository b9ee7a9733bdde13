"""The head-score view: every head's pattern scores, labels and z-scores, the top heads per pattern, label counts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from lmxray.analysis.heads import MAX_SKIP, MIXED_THRESHOLD, PATTERNS, Z_SIGNIFICANT, Z_STD_FLOOR, HeadScores
from lmxray.errors import LmxrayError
from lmxray.views.base import View


@dataclass
class HeadGrid:
    """The scores as ``[layer, head]`` grids (rows follow ``HeadScoresView.layers``), unrounded."""

    scores: dict[str, np.ndarray]  # pattern -> [layer, head]
    baseline: dict[str, np.ndarray]  # pattern -> baseline mean [layer, head]; empty without a baseline
    baseline_std: dict[str, np.ndarray]
    z: dict[str, np.ndarray]  # pattern -> z-score [layer, head]; empty without a baseline
    labels: np.ndarray  # [layer, head]: a pattern name or "mixed"
    skip_k: np.ndarray  # [layer, head]: the best position-skip offset


@dataclass
class HeadScoresView(View):
    """What `lmxray heads` prints and writes, and the report's head-score section."""

    model: str
    baseline: str | None  # what the z-scores compare with (None: no baseline)
    patterns: list[str]  # every pattern scored
    mixed_threshold: float
    max_skip: int
    z_std_floor: float
    heads: list[dict]  # per head: layer, head, label, skip_k, scores (and baseline, z) per pattern, rounded
    top: dict[str, list[dict]]  # shown pattern -> its best heads (layer, head, score, skip_k, label[, baseline, z])
    label_counts: dict[int, dict[str, int]]  # model layer -> label -> heads carrying it
    probes: list[dict]  # the probe set: name, n_tokens, repeat
    checkpoints: list[dict] | None  # per checkpoint, the model's top head per pattern (probes.evolution)
    shown: list[str]  # the patterns ``top`` lists, in order
    z_significant: float  # a head "has" a pattern at score >= mixed_threshold and z >= this
    layers: list[int]
    n_heads: int
    grid: HeadGrid


def head_scores_view(scores: HeadScores, patterns: Iterable[str] | None = None, top: int = 5,
                     heads: list[int] | None = None, probes: Iterable = (),
                     checkpoints: list[dict] | None = None) -> HeadScoresView:
    """Arrange ``scores`` (analysis.heads): ``top`` heads per pattern in ``patterns`` (among ``heads`` when given).

    ``probes``: the probe inputs scored (name, ids, repeat); ``checkpoints``: a checkpoint evolution to carry along.
    """
    shown = list(PATTERNS if patterns is None else patterns)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise LmxrayError(f"top must be an integer of at least 1, got {top!r}", "pass e.g. top=5", params=("top",))
    plain_scores = scores.to_dict()
    return HeadScoresView(
        model=scores.model, baseline=scores.baseline, patterns=plain_scores["patterns"],
        mixed_threshold=MIXED_THRESHOLD, max_skip=MAX_SKIP, z_std_floor=Z_STD_FLOOR, heads=plain_scores["heads"],
        top={p: scores.top_rows(p, top, heads) for p in shown}, label_counts=scores.label_counts(),
        probes=[{"name": p.name, "n_tokens": len(p.ids), "repeat": p.repeat} for p in probes],
        checkpoints=checkpoints, shown=shown, z_significant=Z_SIGNIFICANT, layers=list(scores.layers),
        n_heads=scores.n_heads,
        grid=HeadGrid(scores=dict(scores.scores), baseline=dict(scores.baseline_mean),
                      baseline_std=dict(scores.baseline_std), z=dict(scores.z), labels=scores.labels,
                      skip_k=scores.skip_k),
    )
