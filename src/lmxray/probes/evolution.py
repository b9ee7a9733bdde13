"""How head patterns grow over training: the model's top head per pattern, scored again at each checkpoint."""

from __future__ import annotations

from collections.abc import Iterable

from lmxray.analysis.heads import HeadScores
from lmxray.errors import LmxrayError
from lmxray.probes.heads import ProbeInput, checkpoint_models, model_head_scores


def checkpoint_evolution(scores: HeadScores, checkpoints: Iterable[str], patterns: Iterable[str],
                         probes: list[ProbeInput], layers: list[int] | None = None, device: str = "auto",
                         dtype: str = "auto") -> list[dict]:
    """Per checkpoint spec (loaded one at a time), each pattern's score at the head ``scores`` ranks first.

    An entry is ``{"checkpoint": spec, "scores": {pattern: {layer, head, score, best}}}``; ``best`` is that
    checkpoint's own top head for the pattern (a ``HeadScores.top_rows`` row).
    """
    specs = list(checkpoints)
    if not specs:
        raise LmxrayError("no checkpoints given", "pass checkpoint specs, e.g. ['step1000', 'step5000', 'final']",
                          params=("checkpoints",))
    tracked = {p: scores.top_rows(p, 1)[0] for p in patterns}
    rows = []
    for spec, loaded in zip(specs, checkpoint_models(specs, device, dtype)):
        other = model_head_scores(loaded, probes, layers)
        entry = {"checkpoint": spec, "scores": {}}
        for p, head in tracked.items():
            li = other.layers.index(head["layer"])
            entry["scores"][p] = {"layer": head["layer"], "head": head["head"],
                                  "score": float(other.scores[p][li, head["head"]]), "best": other.top_rows(p, 1)[0]}
        rows.append(entry)
    return rows
