"""/api/jobs: start long work (flow, routes, logits, heads, sweep), follow its progress as SSE, fetch or cancel it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from lmxray.server import tasks
from lmxray.server.jobs import Job
from lmxray.server.responses import json_response
from lmxray.server.schemas import (ErrorOut, FlowJobOut, FlowRequest, HeadsJobOut, HeadsRequest, JobEvent, JobOut,
                                   JobsOut, LogitsJobOut, LogitsRequest, RoutesJobOut, RoutesRequest, SweepJobOut,
                                   SweepRequest)
from lmxray.server.state import ServerState, server_state

router = APIRouter(prefix="/api/jobs", tags=["jobs"])
State = Annotated[ServerState, Depends(server_state)]
REFUSED = {404: {"model": ErrorOut}, 409: {"model": ErrorOut}, 422: {"model": ErrorOut}}
JobId = Annotated[str, Path(max_length=64, description="A job id from POST /api/jobs/{kind}.")]
POLL_S = 0.05  # how often an event stream looks for new events


def job_of(job_id: JobId, state: State) -> Job:
    """The job named in the path (a dependency, so an unknown id is a 404 before any stream starts)."""
    return state.jobs.get(job_id)


def _started(state: ServerState, kind: str, body, task) -> Response:
    job = state.jobs.start(kind, body.model_dump(), task)
    return json_response(job.to_dict(), status_code=202)


@router.post("/flow", status_code=202, response_model=FlowJobOut, responses=REFUSED)
def start_flow(body: FlowRequest, state: State) -> Response:
    """Exact per-source decomposition of the residual stream and logit attribution (contrastive with ``versus``);
    the result is a FlowView."""
    return _started(state, "flow", body, tasks.flow_task(state, body))


@router.post("/routes", status_code=202, response_model=RoutesJobOut, responses=REFUSED)
def start_routes(body: RoutesRequest, state: State) -> Response:
    """Information-flow routes into the prediction; the result is a RoutesView."""
    return _started(state, "routes", body, tasks.routes_task(state, body))


@router.post("/logits", status_code=202, response_model=LogitsJobOut, responses=REFUSED)
def start_logits(body: LogitsRequest, state: State) -> Response:
    """A generation logit trace; the result is a LogitsView."""
    return _started(state, "logits", body, tasks.logits_task(state, body))


@router.post("/heads", status_code=202, response_model=HeadsJobOut, responses=REFUSED)
def start_heads(body: HeadsRequest, state: State) -> Response:
    """Head pattern scores with z-scores against random-init twins; the result is a HeadScoresView."""
    return _started(state, "heads", body, tasks.heads_task(state, body))


@router.post("/sweep", status_code=202, response_model=SweepJobOut, responses=REFUSED)
def start_sweep(body: SweepRequest, state: State) -> Response:
    """A prompt-pair divergence sweep into a run folder under --runs; the result is a SweepView."""
    return _started(state, "sweep", body, tasks.sweep_task(state, body))


@router.get("", response_model=JobsOut)
def list_jobs(state: State) -> Response:
    """Every job the server still holds, newest first (results left out; GET /api/jobs/{id} has them)."""
    return json_response({"jobs": [j.to_dict(with_result=False) for j in state.jobs.list()]})


@router.get("/{job_id}", response_model=JobOut, responses={404: {"model": ErrorOut}})
def get_job(job_id: JobId, state: State) -> Response:
    return json_response(state.jobs.get(job_id).to_dict())


@router.delete("/{job_id}", response_model=JobOut, responses={404: {"model": ErrorOut}})
def cancel_job(job_id: JobId, state: State) -> Response:
    """Ask a job to stop at its next step (a queued job stops at once); a finished job is returned as it is."""
    job = state.jobs.get(job_id)
    job.cancel()
    return json_response(job.to_dict(with_result=False))


@router.get("/{job_id}/events", response_class=EventSourceResponse, responses={404: {"model": ErrorOut}})
async def job_events(job: Annotated[Job, Depends(job_of)],
                     last_event_id: Annotated[str | None, Header(max_length=32)] = None
                     ) -> AsyncIterator[JobEvent]:
    """The job's progress as Server-Sent Events (``event``: the state, ``id``: the sequence number, ``data``: a
    JobEvent); the stream ends after the final state. ``Last-Event-ID`` resumes after that event."""
    seq = int(last_event_id) + 1 if last_event_id and last_event_id.isdigit() else 0
    while True:
        events = job.events_from(seq)
        for event in events:
            yield ServerSentEvent(data=event, event=event["state"], id=str(event["seq"]))
            seq = event["seq"] + 1
        if events and events[-1]["state"] in ("done", "failed", "cancelled"):
            return
        await asyncio.sleep(POLL_S)
