"""The API's data, as pydantic models: the single source of openapi.json (and of the pages' TypeScript types).

Requests refuse unknown fields and bound every number and string, so no input reaches the library in a form
it cannot answer with a one-line error. Responses are the library's views: dataclasses from lmxray.views
(and the analysis rows they hold) are used as they are; where a view's ``to_dict()`` differs from its fields
(numpy arrays, the trace summary's flat layout) a model here describes the JSON. Tests check every response
against its model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from lmxray.analysis.convergence import ConvergenceRow, Summary
from lmxray.probes.generate import Step
from lmxray.server.results import FlowOut, HeadScoresOut, RoutesOut
from lmxray.store import RunRecord
from lmxray.trace.fields import DEFAULT_THRESHOLD
from lmxray.trace.types import ModelInfo, TokenScore
from lmxray.views import LogitsView

MAX_PROMPT_CHARS = 200_000  # well past any model's context; the token count is checked against the model's
MAX_INDEX = 2**31 - 1
Index = Field(ge=-MAX_INDEX, le=MAX_INDEX)
Spec = Field(min_length=1, max_length=4096, description="A model SPEC the server was started with (GET /api/models).")
Prompt = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
Indices = Field(default=None, min_length=1, max_length=4096)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors, models, runs ------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    """Every 4xx answer: what is wrong and how to fix it, one line each."""

    error: str
    fix: str | None


class ModelOut(BaseModel):
    """One served model and its load state."""

    spec: str
    state: Literal["available", "loading", "loaded", "failed"]
    device: str
    info: ModelInfo | None  # known once loaded
    model_id: str | None  # the run store's identity of the weights, once loaded
    max_positions: int | None
    load_seconds: float | None
    error: ErrorOut | None  # why the last load failed


class ModelsOut(BaseModel):
    models: list[ModelOut]


class LoadRequest(Request):
    model: str = Spec


class PlanOptions(Request):
    """What a trace keeps (lmxray.CapturePlan): layers, per-head maps, kept query rows, top-k, edge threshold."""

    layers: list[int] | None = Field(default=None, min_length=1, max_length=4096,
                                     description="Model layers to capture (negative count from the end); null: all.")
    per_head: bool = False
    heads: list[int] | None = Field(default=None, min_length=1, max_length=4096,
                                    description="With per_head: the heads kept; null: all.")
    positions: list[int] | None = Field(default=None, min_length=1, max_length=4096,
                                        description="Query rows kept (negative count from the end); null: all.")
    top_k: int = Field(default=5, ge=1, le=1000)
    threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0.0, le=1.0)
    lens_all: bool = Field(default=False, description="Logit lens at every position, not only the prediction's.")


class TraceRequest(Request):
    model: str = Spec
    prompt: str = Prompt
    position: int = Field(default=-1, ge=-MAX_INDEX, le=MAX_INDEX, description="Prediction position.")
    plan: PlanOptions = Field(default_factory=PlanOptions)


class TraceOut(BaseModel):
    """The stored run of a trace; ``hit``: it was in the run store already (no forward pass ran)."""

    run: RunRecord
    hit: bool


class RunsOut(BaseModel):
    runs: list[RunRecord]
    limit: int
    offset: int


class TraceSummaryOut(BaseModel):
    """lmxray.views.trace_view(trace).to_dict(): what `lmxray trace --json` prints."""

    model: ModelInfo
    prompt: str
    tokens: list[str]
    token_ids: list[int]
    position: int
    predicted_token: int
    predicted_text: str
    confidence: float
    top_k: list[TokenScore]
    expected_attention: dict[str, list[int]]
    note: str | None
    convergence: list[ConvergenceRow] | None
    summary: Summary | None
    out: str | None


class TopKOut(BaseModel):
    position: int
    top_k: list[TokenScore]


class MapOut(BaseModel):
    """lmxray.views.map_view(...).to_dict(): one layer's map [q_pos][k_pos] (head null: summed over heads)."""

    model: str
    tokens: list[str]
    layer: int
    head: int | None
    values: list[list[float]]
    vmax: float
    threshold: float | None


class HeadMapsOut(BaseModel):
    """lmxray.views.head_maps_view(...).to_dict(): one layer's per-head maps [head][q_pos][k_pos] on one scale."""

    model: str
    tokens: list[str]
    layer: int
    heads: list[int]
    values: list[list[list[float]]]
    vmax: float
    threshold: float | None


# -- jobs ------------------------------------------------------------------------------------------------


class FlowRequest(Request):
    """Exact per-source decomposition and logit attribution (lmxray flow); ``versus``: contrastive A - B."""

    model: str = Spec
    prompt: str = Prompt
    position: int = Field(default=-1, ge=-MAX_INDEX, le=MAX_INDEX)
    tokens: list[str] = Field(default_factory=list, max_length=64,
                              description="Extra single tokens whose logit is attributed (the prediction comes first).")
    versus: str | None = Field(default=None, max_length=256, description="Token B of logit(A) - logit(B).")
    groups: str | None = Field(default=None, max_length=4096, description='"words" or token ranges like "0-2,3".')


class RoutesRequest(Request):
    """Information-flow routes (Ferrando & Voita 2024) into the prediction at ``position``."""

    model: str = Spec
    prompt: str = Prompt
    position: int = Field(default=-1, ge=-MAX_INDEX, le=MAX_INDEX)
    threshold: float = Field(default=0.04, gt=0.0, le=1.0)


class LogitsRequest(Request):
    """A generation logit trace: per step the top-k candidates, entropy and confidence flag."""

    model: str = Spec
    prompt: str = Prompt
    steps: int = Field(default=8, ge=1, le=1024)
    top_k: int = Field(default=5, ge=1, le=1000)
    temperature: float = Field(default=0.0, ge=0.0, le=1e6)
    seed: int = Field(default=0, ge=0, le=2**63 - 1)


class HeadsRequest(Request):
    """Head pattern scores on the probe set, against random-init twins (or no baseline)."""

    model: str = Spec
    baseline: Literal["random", "none"] = "random"
    baseline_seeds: int = Field(default=3, ge=1, le=16)
    seed: int = Field(default=0, ge=0, le=2**32)
    repeats: int = Field(default=2, ge=1, le=16)
    layers: list[int] | None = Indices
    top: int = Field(default=5, ge=1, le=1000)


class SweepRequest(Request):
    """A prompt-pair divergence sweep of a shipped pair set, written to a run folder under --runs."""

    model: str = Spec
    dataset: Literal["contexts", "length-matched"] = "contexts"
    folder: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
                        description="The run folder's name under --runs (made when missing).")
    limit: int | None = Field(default=None, ge=1, le=1_000_000)
    batch_size: int = Field(default=16, ge=1, le=256)
    align: Literal["tokens", "start", "end"] = "tokens"
    threshold: float = Field(default=0.05, ge=0.0, le=1.0)
    fresh: bool = False


class JobEvent(BaseModel):
    """One progress event of a job (the SSE stream's ``data``)."""

    seq: int
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float
    message: str


# -- experiments -----------------------------------------------------------------------------------------


class ColumnOut(BaseModel):
    name: str
    type: str  # the Arrow type, e.g. "int32", "double", "string"


class TableOut(BaseModel):
    name: str  # "rows" (the run's stored parts) or a summary table's file stem
    n_rows: int
    columns: list[ColumnOut]


class ExperimentOut(BaseModel):
    """A sweep or profile run folder under --runs."""

    name: str
    command: str
    model: str
    finished: bool  # its summary.json is written
    tables: list[TableOut]


class SweepOut(BaseModel):
    """lmxray.views.sweep_view(folder).to_dict() (``run``: the folder's name under --runs)."""

    run: str
    run_stats: dict[str, Any] | None = None
    command: Literal["sweep"]
    schema_: int = Field(alias="schema")
    model: str
    pairs: int
    layers: int
    threshold: float
    align: str
    categories: list[dict[str, Any]]
    length_groups: list[dict[str, Any]]
    length_split: dict[str, Any]


class ProfileOut(BaseModel):
    """lmxray.views.profile_view(folder).to_dict() (``run``: the folder's name under --runs)."""

    run: str
    run_stats: dict[str, Any] | None = None
    command: Literal["profile"]
    model: str
    layers: int
    max_tokens: int
    corpora: list[dict[str, Any]]


ExperimentSummaryOut = SweepOut | ProfileOut


class CategoryCurve(BaseModel):
    """One category's per-layer curves: mean JS with its bootstrap band, and the first-position share."""

    category: str
    n_pairs: int
    js_mean: list[float]
    js_lo: list[float]
    js_hi: list[float]
    first_share: list[float | None]


class SweepCurvesOut(BaseModel):
    """What a sweep's divergence-by-category figure draws (lmxray.analysis.bootstrap.curve_bands over its layers
    table, the first-position share from its bos_profile table), categories in dataset order."""

    run: str
    layers: int
    level: float
    categories: list[CategoryCurve]


class SweepPairOut(BaseModel):
    """lmxray.views.experiments_pair.sweep_pair_view(folder, pair).to_dict(), with the served model that traces it."""

    run: str
    id: str
    category: str
    model: str  # the run's model, as its run.json names it
    served: str | None  # the served SPEC that loads that model (POST /api/runs takes it); null when none does
    align: str
    recorded: bool  # the run recorded the pair's prompts (sweeps before rows layout 3 did not)
    intended: str | None
    contradictory: str | None
    expected: str | None
    note: str | None  # when not recorded: why, and how to record them


class ExperimentsOut(BaseModel):
    experiments: list[ExperimentOut]


Scalar = str | int | float | bool | None


class Filter(Request):
    """One condition on a column: eq/ne/lt/le/gt/ge against a value, or ``in`` a list of values."""

    column: str = Field(min_length=1, max_length=256)
    op: Literal["eq", "ne", "lt", "le", "gt", "ge", "in"] = "eq"
    value: Scalar | list[Scalar] = Field(default=None)


class TableQuery(Request):
    """Rows of one table: chosen columns, rows matching every filter, a page of them (and the count matched)."""

    columns: list[str] | None = Field(default=None, min_length=1, max_length=256)
    filters: list[Filter] = Field(default_factory=list, max_length=64)
    limit: int = Field(default=100, ge=1, le=10_000)
    offset: int = Field(default=0, ge=0, le=MAX_INDEX)


class TableRowsOut(BaseModel):
    table: str
    columns: list[str]
    rows: list[list[Any]]  # one list per row, in ``columns`` order
    n_matched: int  # rows matching the filters (before limit and offset)
    limit: int
    offset: int


# -- jobs' answers (after SweepOut, a sweep job's result) --------------------------------------------------


class JobBase(BaseModel):
    """What every job answer holds besides its kind and result."""

    model_config = ConfigDict(extra="forbid")  # inherited by the view dataclasses of the results

    id: str
    params: dict[str, Any]
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float
    message: str
    error: ErrorOut | None
    created: float
    started: float | None
    finished: float | None


class FlowJobOut(JobBase):
    """A flow job; once done, its result is the FlowView."""

    kind: Literal["flow"]
    result: FlowOut | None


class RoutesJobOut(JobBase):
    """A routes job; once done, its result is the RoutesView."""

    kind: Literal["routes"]
    result: RoutesOut | None


class LogitsJobOut(JobBase):
    """A logits job; once done, its result is the LogitsView."""

    kind: Literal["logits"]
    result: LogitsView | None


LogitsJobOut.model_rebuild(_types_namespace={"Step": Step})  # views name Step only for type checkers (no torch)


class HeadsJobOut(JobBase):
    """A heads job; once done, its result is the HeadScoresView."""

    kind: Literal["heads"]
    result: HeadScoresOut | None


class SweepJobOut(JobBase):
    """A sweep job; once done, its result is the SweepView of its run folder."""

    kind: Literal["sweep"]
    result: SweepOut | None


class JobOut(RootModel[Annotated[FlowJobOut | RoutesJobOut | LogitsJobOut | HeadsJobOut | SweepJobOut,
                                 Field(discriminator="kind")]]):
    """A job: its kind and parameters, state, progress, and (once done) its result, the view of its kind
    (``kind`` tells which); null until done, and in lists."""


class JobsOut(BaseModel):
    jobs: list[JobOut]
