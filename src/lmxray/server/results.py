"""The finished jobs' results as pydantic models: one schema per job kind, the JSON of that kind's view.

Where a view's fields are precise (LogitsView, the flow and routes rows) the view dataclasses are used as they
are; where a view holds plain dicts or numpy arrays (FlowView's sink and contrast tokens, RoutesView's graph,
HeadScoresView's rows and grids) a model here describes their JSON. Every model refuses unknown keys (the
dataclasses inside inherit that), so a test that validates real results fails when a view's to_dict() drifts.
Floats are nullable where a view can hold NaN (written as null).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from lmxray.flow.routes import Prediction
from lmxray.flow.routes_graph import Edge, Node
from lmxray.trace.types import ModelInfo
from lmxray.views.flow import Attribution, FlowLayer
from lmxray.views.logits import LogitsView
from lmxray.views.routes import RouteLayer


class Result(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SinkOut(Result):
    """The attention sink: the first source, reported apart from the content sources."""

    source: str
    index: int
    note: str


class TokenLogitOut(Result):
    token_id: int
    text: str
    logit: float


class ContrastOut(Result):
    """``logit(a) - logit(b)`` split over the sources, as for one token (lmxray.views.flow.ContrastView)."""

    a: TokenLogitOut
    b: TokenLogitOut
    difference: float
    sum: float
    sink: float
    content: float
    bias: float
    contributions: list[float]


class FlowOut(Result):
    """lmxray.views.FlowView.to_dict(): what `lmxray flow --json` prints (source lists end with the bias)."""

    model: str
    prompt: str
    tokens: list[str]
    position: int
    sources: list[str]
    groups: list[list[int]]
    sink: SinkOut
    max_error: float
    error: list[float]
    layers: list[FlowLayer]
    attribution: list[Attribution]
    contrast: ContrastOut | None
    out: str | None
    model_info: ModelInfo | None
    n_sources: int
    confidence: float | None


class RoutesOut(Result):
    """lmxray.views.RoutesView.to_dict(): what `lmxray flow --method routes --json` prints."""

    method: str
    model: str
    model_info: ModelInfo
    prompt: str
    tokens: list[str]
    token_ids: list[int]
    position: int
    prediction: Prediction
    threshold: float
    parallel: bool
    n_layers: int
    n_heads: int
    max_error: float
    error: list[float]
    root: str
    nodes: list[Node]
    edges: list[Edge]
    layers: list[RouteLayer]
    out: str | None


class HeadRow(Result):
    """One head: its label, best skip offset and rounded scores per pattern (baseline mean and z with a baseline)."""

    layer: int
    head: int
    label: str
    skip_k: int
    scores: dict[str, float | None]
    baseline: dict[str, float | None] | None = None
    z: dict[str, float | None] | None = None


class TopHeadRow(Result):
    """One of a pattern's best heads (baseline mean and z with a baseline)."""

    layer: int
    head: int
    score: float | None
    skip_k: int
    label: str
    baseline: float | None = None
    z: float | None = None


class ProbeRow(Result):
    name: str
    n_tokens: int
    repeat: int


class HeadGridOut(Result):
    """The scores as ``[layer, head]`` grids (rows follow ``layers``), unrounded; baseline and z empty without one."""

    scores: dict[str, list[list[float | None]]]
    baseline: dict[str, list[list[float | None]]]
    baseline_std: dict[str, list[list[float | None]]]
    z: dict[str, list[list[float | None]]]
    labels: list[list[str]]
    skip_k: list[list[int]]


class HeadScoresOut(Result):
    """lmxray.views.HeadScoresView.to_dict(): what `lmxray heads` prints and writes."""

    model: str
    baseline: str | None
    patterns: list[str]
    mixed_threshold: float
    max_skip: int
    z_std_floor: float
    heads: list[HeadRow]
    top: dict[str, list[TopHeadRow]]
    label_counts: dict[str, dict[str, int]]  # model layer (as a JSON key) -> label -> heads carrying it
    probes: list[ProbeRow]
    checkpoints: None  # a checkpoint evolution (probes.evolution): never carried by a job
    shown: list[str]
    z_significant: float
    layers: list[int]
    n_heads: int
    grid: HeadGridOut
