"""/api/runs: trace a prompt into the run store (a cache hit runs no forward pass) and read a stored run's views."""

from __future__ import annotations

import os
import re
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import FileResponse, Response

from lmxray.capture.plan import CapturePlan
from lmxray.errors import LmxrayError
from lmxray.server.errors import NotFound
from lmxray.server.responses import json_response
from lmxray.server.schemas import (MAX_INDEX, ErrorOut, HeadMapsOut, MapOut, PlanOptions, RunsOut, TopKOut, TraceOut,
                                   TraceRequest, TraceSummaryOut)
from lmxray.server.state import ServerState, server_state
from lmxray.store import RunRecord, trace_cached
from lmxray.trace.types import Trace
from lmxray.views import (CompareView, ConvergenceView, LensView, compare_view, convergence_view, head_maps_view,
                          lens_view, map_view, trace_view)

router = APIRouter(prefix="/api", tags=["runs"])
State = Annotated[ServerState, Depends(server_state)]
RUN_ID = re.compile(r"[0-9a-f]{32}")
RunId = Annotated[str, Path(max_length=64, description="A run id (32 hex digits) from GET /api/runs.")]
ERRORS = {404: {"model": ErrorOut}, 422: {"model": ErrorOut}}
BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def capture_plan(options: PlanOptions) -> CapturePlan:
    """The request's plan options as a CapturePlan (the library checks the values)."""
    if options.heads is not None and not options.per_head:
        raise LmxrayError("plan.heads chooses among per-head maps", "set plan.per_head to true, or drop plan.heads")
    tupled = {name: None if value is None else tuple(value) for name, value in
              (("layers", options.layers), ("heads", options.heads), ("positions", options.positions))}
    return CapturePlan(per_head=options.per_head, top_k=options.top_k, threshold=options.threshold,
                       lens_positions=None if options.lens_all else (), **tupled)


def stored_trace(state: ServerState, run_id: str) -> Trace:
    """The trace of a stored run; 404 for an unknown (or evicted) run id."""
    trace = state.open_runs.get(run_id) if RUN_ID.fullmatch(run_id) else None
    if trace is None:
        raise NotFound(f"no run {run_id!r} in the store",
                       "list the runs with GET /api/runs; an evicted run is traced again by POST /api/runs")
    return trace


def stored_record(state: ServerState, run_id: str) -> RunRecord:
    """The record of a stored run; 404 for an unknown run id."""
    if RUN_ID.fullmatch(run_id):
        try:
            return state.store.record(run_id)
        except LmxrayError:  # the store's "no run" error, answered as a 404 below
            pass
    raise NotFound(f"no run {run_id!r} in the store", "list the runs with GET /api/runs")


@router.post("/runs", response_model=TraceOut, responses={**ERRORS, 413: {"model": ErrorOut}})
def trace(body: TraceRequest, state: State) -> Response:
    """Trace a prompt with a served model. The run store is asked first: a hit returns the stored run and runs no
    forward pass; a miss traces on the model's device worker and stores the trace."""
    plan = capture_plan(body.plan)
    loaded = state.registry.get(body.model)
    record = state.store.get(state.store.key(loaded.model_id, body.prompt, plan, body.position))
    hit = record is not None
    if not hit:
        record, made, hit = loaded.worker.run(
            lambda: trace_cached(state.store, loaded.model, body.prompt, plan, position=body.position))
        state.open_runs.keep(record, made)  # its views are usually asked for next
    return json_response({"run": record.to_dict(), "hit": hit})


@router.get("/runs", response_model=RunsOut)
def list_runs(state: State, limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0, le=MAX_INDEX),
              model_id: str | None = Query(None, max_length=128)) -> Response:
    """Stored runs, newest first (``model_id``: one model's runs)."""
    runs = state.store.list(limit=limit, offset=offset, model_id=model_id)
    return json_response({"runs": [r.to_dict() for r in runs], "limit": limit, "offset": offset})


@router.get("/runs/{run_id}", response_model=RunRecord, responses=ERRORS)
def get_run(run_id: RunId, state: State) -> Response:
    return json_response(stored_record(state, run_id).to_dict())


@router.delete("/runs/{run_id}", status_code=204, responses=ERRORS)
def delete_run(run_id: RunId, state: State) -> Response:
    stored_record(state, run_id)
    state.open_runs.forget(run_id)
    try:
        state.store.delete(run_id)
    except LmxrayError:  # deleted by another request meanwhile
        raise NotFound(f"no run {run_id!r} in the store", "list the runs with GET /api/runs") from None
    return Response(status_code=204)


@router.get("/runs/{run_id}/summary", response_model=TraceSummaryOut, responses=ERRORS)
def summary(run_id: RunId, state: State) -> Response:
    """The trace summary (lmxray trace --json): prediction, top-k, convergence table and metrics."""
    return json_response(trace_view(stored_trace(state, run_id), strict=False).to_dict())


@router.get("/runs/{run_id}/convergence", response_model=ConvergenceView, responses=ERRORS)
def convergence(run_id: RunId, state: State) -> Response:
    return json_response(convergence_view(stored_trace(state, run_id)).to_dict())


@router.get("/runs/{run_id}/top-k", response_model=TopKOut, responses=ERRORS)
def top_k(run_id: RunId, state: State) -> Response:
    """The candidates at the prediction position, best first, as the trace recorded them."""
    view = trace_view(stored_trace(state, run_id), strict=False).to_dict()
    return json_response({"position": view["position"], "top_k": view["top_k"]})


@router.get("/runs/{run_id}/lens", response_model=LensView, responses=ERRORS)
def lens(run_id: RunId, state: State, position: int = Query(-1, ge=-MAX_INDEX, le=MAX_INDEX)) -> Response:
    """The logit lens at ``position``: per layer the top-k and the final prediction's rank and probability. Tokens the
    trace knows only by id are named when the run's model is loaded."""
    trace = stored_trace(state, run_id)
    decode = state.registry.decoder(stored_record(state, run_id).model_id)
    return json_response(lens_view(trace, position, decode).to_dict())


@router.get("/runs/{run_id}/maps/{layer}", response_model=MapOut,
            responses={**ERRORS, 200: {"content": BINARY, "description": "JSON, or with format=binary little-endian "
                                       "float32 row-major bytes [q_pos, k_pos] (shape in the X-Shape header)"}})
def layer_map(run_id: RunId, layer: Annotated[int, Path(ge=-MAX_INDEX, le=MAX_INDEX)], state: State,
              head: int | None = Query(None, ge=-MAX_INDEX, le=MAX_INDEX),
              format: Literal["json", "binary"] = "json") -> Response:
    """One layer's attention map: summed over heads, or of one ``head`` (needs a per-head trace)."""
    view = map_view(stored_trace(state, run_id), layer, head)
    if format == "binary":
        return _binary(view, {"x-layer": str(view.layer), "x-head": "" if view.head is None else str(view.head)})
    return json_response(view.to_dict())


@router.get("/runs/{run_id}/maps/{layer}/heads", response_model=HeadMapsOut,
            responses={**ERRORS, 200: {"content": BINARY, "description": "JSON, or with format=binary little-endian "
                                       "float32 row-major bytes [head, q_pos, k_pos] (shape in X-Shape)"}})
def head_maps(run_id: RunId, layer: Annotated[int, Path(ge=-MAX_INDEX, le=MAX_INDEX)], state: State,
              heads: list[int] | None = Query(None, max_length=4096), format: Literal["json", "binary"] = "json"
              ) -> Response:
    """One layer's per-head maps on one colour scale (``heads``: some of them; default every captured head)."""
    view = head_maps_view(stored_trace(state, run_id), layer, heads)
    if format == "binary":
        return _binary(view, {"x-layer": str(view.layer), "x-heads": ",".join(map(str, view.heads))})
    return json_response(view.to_dict())


@router.get("/runs/{run_id}/trace", responses={**ERRORS, 200: {"content": BINARY,
                                                                "description": "the run's .safetensors trace"}})
def trace_file(run_id: RunId, state: State) -> FileResponse:
    """The stored trace file (.safetensors; `lmxray convert` turns it into JSONL)."""
    stored_record(state, run_id)
    path = state.store.trace_path(run_id)
    if not path.resolve().is_relative_to(os.path.realpath(state.config.runs)) or not path.is_file():
        raise NotFound(f"no trace file for run {run_id!r}", "trace the prompt again with POST /api/runs")
    return FileResponse(path, media_type="application/octet-stream", filename=f"{run_id}.safetensors")


@router.get("/compare", response_model=CompareView, responses=ERRORS)
def compare(state: State, a: str = Query(max_length=64), b: str = Query(max_length=64),
            align: Literal["start", "end"] = "start") -> Response:
    """Two stored runs side by side: summed and length-normalised metrics, per-layer JS divergence."""
    return json_response(compare_view(stored_trace(state, a), stored_trace(state, b), a, b, align).to_dict())


def _binary(view, headers: dict) -> Response:
    data, shape = view.to_bytes()
    return Response(data, media_type="application/octet-stream",
                    headers={**headers, "x-shape": ",".join(map(str, shape)), "x-dtype": "float32",
                             "x-byte-order": "little", "x-vmax": repr(view.vmax)})
