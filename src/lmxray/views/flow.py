"""The flow view: per layer the sources of the residual at one position, and the direct logit attribution."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lmxray.views.base import View

if TYPE_CHECKING:
    from lmxray.flow.result import Flow

SINK_NOTE = ("the first source (position 0: BOS where the tokenizer adds one, else the first token) is the usual "
             "attention sink; it is reported apart from the content sources, never ranked among them")


@dataclass
class FlowLayer:
    """One layer at the flow's position: norms and shares (of their sum over sources) per reaching source."""

    layer: int
    attention: list[float]
    mlp: list[float]
    total: list[float]
    attention_share: list[float]
    mlp_share: list[float]
    total_share: list[float]


@dataclass
class Attribution:
    """One token's final logit split over the reaching sources; sink + content + bias = sum (= logit, to rounding)."""

    token_id: int
    text: str
    logit: float
    sum: float
    sink: float
    content: float
    bias: float
    contributions: list[float]


@dataclass
class ContrastView:
    """``logit(a) - logit(b)`` split over the sources, as for one token."""

    a: dict  # {token_id, text, logit}
    b: dict
    difference: float
    sum: float
    sink: float
    content: float
    bias: float
    contributions: list[float]


@dataclass
class FlowView(View):
    """What `lmxray flow --json` prints; the source lists hold only sources at or before the position, bias last."""

    model: str
    prompt: str
    tokens: list[str]
    position: int
    sources: list[str]
    groups: list[list[int]]  # token range [a, b) of each listed source but the bias
    sink: dict  # {source, index, note}
    max_error: float
    error: list[float]  # per layer: max relative error of the sum over sources
    layers: list[FlowLayer]
    attribution: list[Attribution]  # the predicted token first
    contrast: ContrastView | None
    out: str | None = None
    model_info: dict | None = None  # the model's identity (lmxray.trace.types.ModelInfo as a dict)
    n_sources: int = 0  # sources over the whole prompt, the bias not counted (``sources`` lists those reaching)
    confidence: float | None = None  # the model's probability of its prediction at the position


def reached(flow: Flow) -> list[int]:
    """Indices on the source axis that can reach the flow's position (tokens at or before it, then the bias)."""
    return list(range(flow.reached(flow.position))) + [len(flow.sources) - 1]


def content(flow: Flow) -> list[int]:
    """Sources that reach the position other than the first (the sink) and the bias."""
    return list(range(1, flow.reached(flow.position)))


def split_totals(flow: Flow, contributions: np.ndarray) -> dict:
    """The sink's, the content sources' and the bias's parts of an attribution (they add up to its sum)."""
    return {"sink": float(contributions[0]), "content": float(np.sum(contributions[content(flow)])),
            "bias": float(contributions[-1])}


def flow_view(flow: Flow, out: Path | str | None = None) -> FlowView:
    """Arrange a Flow (lmxray.flow) at its position: layers over the reaching sources, then the attribution."""
    p, keep = flow.position, reached(flow)
    shares = {k: flow.shares(k)[:, p] for k in ("total", "attention", "mlp")}

    def listed(a: np.ndarray) -> list[float]:
        return [float(x) for x in a[keep]]

    c = flow.contrast
    return FlowView(
        model=flow.model.name, prompt=flow.prompt, tokens=list(flow.tokens), position=p,
        sources=[flow.sources[s] for s in keep], groups=[list(flow.groups[s]) for s in keep[:-1]],
        sink={"source": flow.sources[0], "index": 0, "note": SINK_NOTE},
        max_error=flow.max_error, error=[float(e) for e in flow.error],
        layers=[FlowLayer(layer, listed(flow.attention[layer, p]), listed(flow.mlp[layer, p]),
                          listed(flow.total[layer, p]), listed(shares["attention"][layer]),
                          listed(shares["mlp"][layer]), listed(shares["total"][layer]))
                for layer in range(flow.total.shape[0])],
        attribution=[Attribution(a.token_id, a.text, a.logit, a.total, **split_totals(flow, a.contributions),
                                 contributions=listed(a.contributions)) for a in flow.logits],
        contrast=None if c is None else ContrastView(
            a={"token_id": c.a.token_id, "text": c.a.text, "logit": c.a.logit},
            b={"token_id": c.b.token_id, "text": c.b.text, "logit": c.b.logit},
            difference=c.difference, sum=float(c.contributions.sum()), **split_totals(flow, c.contributions),
            contributions=listed(c.contributions)),
        out=None if out is None else str(out), model_info=asdict(flow.model), n_sources=len(flow.sources) - 1,
        confidence=flow.top_k[0].prob if flow.top_k else None,
    )
