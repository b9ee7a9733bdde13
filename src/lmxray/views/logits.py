"""The generation logit-trace view: per step the prefix, top-k candidates, entropy and confidence flag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lmxray.views.base import View

if TYPE_CHECKING:
    from lmxray.probes.generate import LogitTrace, Step


@dataclass
class LogitsView(View):
    """What `lmxray logits` shows and writes: probes.generate's trace with the flag thresholds it used."""

    model: str
    prompt: str
    temperature: float  # 0 = greedy
    seed: int | None  # the sampling seed (None when greedy)
    steps: list[Step]  # candidates best first; ``chosen_*`` may lie outside the top-k when sampling
    generated: str
    stopped: str  # "steps" or "eos"
    thresholds: dict[str, float]  # {"confident": top-1 above it, "no_idea": top-1 below it}; between: uncertain


def logits_view(result: LogitTrace) -> LogitsView:
    """Arrange a ``LogitTrace`` (lmxray.probes.generate.logit_trace) for rendering."""
    from lmxray.probes.generate import CONFIDENT, NO_IDEA

    return LogitsView(model=result.model, prompt=result.prompt, temperature=result.temperature, seed=result.seed,
                      steps=list(result.steps), generated=result.generated, stopped=result.stopped,
                      thresholds={"confident": CONFIDENT, "no_idea": NO_IDEA})
