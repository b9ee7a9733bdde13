"""/api/experiments: browse the sweep and profile run folders under --runs and query their Parquet tables."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from lmxray.server import tables
from lmxray.server.errors import Conflict
from lmxray.server.responses import json_response
from lmxray.server.schemas import (ErrorOut, ExperimentOut, ExperimentsOut, ExperimentSummaryOut, TableQuery,
                                   TableRowsOut)
from lmxray.server.state import ServerState, server_state
from lmxray.views import profile_view, sweep_view

router = APIRouter(prefix="/api/experiments", tags=["experiments"])
State = Annotated[ServerState, Depends(server_state)]
ERRORS = {404: {"model": ErrorOut}, 409: {"model": ErrorOut}, 422: {"model": ErrorOut}}
Name = Annotated[str, Path(max_length=128, description="A run folder's name under --runs.")]
Table = Annotated[str, Path(max_length=128, description="A table of the run folder (GET /api/experiments/{name}).")]
VIEWS = {"sweep": sweep_view, "profile": profile_view}


def _out(experiment: tables.Experiment) -> dict:
    return {"name": experiment.name, "command": experiment.command, "model": experiment.model,
            "finished": experiment.finished, "tables": tables.describe(experiment)}


@router.get("", response_model=ExperimentsOut)
def list_experiments(state: State) -> Response:
    """Every run folder (a folder with run.json) directly under --runs, with its tables."""
    return json_response({"experiments": [_out(e) for e in tables.experiments(state.config.runs)]})


@router.get("/{name}", response_model=ExperimentOut, responses=ERRORS)
def get_experiment(name: Name, state: State) -> Response:
    return json_response(_out(tables.experiment(state.config.runs, name)))


@router.get("/{name}/summary", response_model=ExperimentSummaryOut, responses=ERRORS)
def experiment_summary(name: Name, state: State) -> Response:
    """A finished sweep's SweepView or profile's ProfileView (what `lmxray sweep --summary` prints)."""
    experiment = tables.experiment(state.config.runs, name)
    view = VIEWS.get(experiment.command)
    if view is None:
        raise Conflict(f"{name!r} is a `{experiment.command}` run, which has no summary view",
                       "choose a sweep or profile run folder")
    if not experiment.finished:
        raise Conflict(f"the {experiment.command} in {name!r} has not finished (no summary yet)",
                       "wait for it to finish, or rerun it; its stored rows are in its 'rows' table")
    data = view(experiment.folder)
    data.run = name  # the folder's name under --runs, not the server's path
    return json_response(data.to_dict())


@router.post("/{name}/tables/{table}/query", response_model=TableRowsOut, responses=ERRORS)
def query_table(name: Name, table: Table, body: TableQuery, state: State) -> Response:
    """Rows of one table matching every filter (column equality, ranges, membership), a page at a time."""
    experiment = tables.experiment(state.config.runs, name)
    return json_response(tables.query(experiment, table, body.columns, [f.model_dump() for f in body.filters],
                                      body.limit, body.offset))
