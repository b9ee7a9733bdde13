"""/api/experiments: browse the sweep and profile run folders under --runs and query their Parquet tables."""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from lmxray.models.loader import split_random
from lmxray.server import tables
from lmxray.server.errors import Conflict, NotFound
from lmxray.server.responses import json_response
from lmxray.server.schemas import (ErrorOut, ExperimentOut, ExperimentsOut, ExperimentSummaryOut, SweepCurvesOut,
                                   SweepPairOut, TableQuery, TableRowsOut)
from lmxray.server.state import ServerState, server_state
from lmxray.views import profile_view, sweep_view
from lmxray.views.experiments_curves import sweep_curves_view
from lmxray.views.experiments_pair import sweep_pair_view

router = APIRouter(prefix="/api/experiments", tags=["experiments"])
State = Annotated[ServerState, Depends(server_state)]
ERRORS = {404: {"model": ErrorOut}, 409: {"model": ErrorOut}, 422: {"model": ErrorOut}}
Name = Annotated[str, Path(max_length=128, description="A run folder's name under --runs.")]
Table = Annotated[str, Path(max_length=128, description="A table of the run folder (GET /api/experiments/{name}).")]
PairId = Annotated[str, Path(max_length=256, description="A pair's id in the sweep's pairs table (it may hold a slash).")]
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


@router.get("/{name}/curves", response_model=SweepCurvesOut, responses=ERRORS)
def sweep_curves(name: Name, state: State) -> Response:
    """A finished sweep's per-layer curves per category: mean JS with its bootstrap band (the band its figure
    draws) and the first-position share."""
    experiment = _finished(state, name, "sweep")
    view = sweep_curves_view(experiment.folder)
    view.run = name  # the folder's name under --runs, not the server's path
    return json_response(view.to_dict())


@router.get("/{name}/pairs/{pair:path}", response_model=SweepPairOut, responses=ERRORS)
def sweep_pair(name: Name, pair: PairId, state: State) -> Response:
    """A finished sweep's pair: its intended and contradictory prompts as traced (null, with a note, for a run
    that predates recorded prompts) and the served model that traces them (POST /api/runs)."""
    experiment = _finished(state, name, "sweep")
    view = sweep_pair_view(experiment.folder, pair)
    if view is None:
        raise NotFound(f"the sweep {name!r} has no pair {pair!r}", "pick an id from its pairs table")
    view.run = name  # the folder's name under --runs, not the server's path
    return json_response({**view.to_dict(), "served": served_spec(view.model, state.config.models)})


def served_spec(model: str, specs: tuple[str, ...]) -> str | None:
    """The served SPEC that loads a run's model: the same spec or path, or ``random:SPEC`` for a run made with
    ``random:SPEC@seed0`` (the server loads random weights with seed 0); None when no served SPEC does."""
    wanted = model.removesuffix("@seed0") if split_random(model)[1] == "random" else model
    return next((spec for spec in specs if _same_model(spec, wanted)), None)


def _same_model(a: str, b: str) -> bool:
    """Equal specs, or the same file or folder named two ways (both random or both pretrained)."""
    if a == b:
        return True
    (a, init_a), (b, init_b) = split_random(a), split_random(b)
    return init_a == init_b and os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)


def _finished(state: ServerState, name: str, command: str) -> tables.Experiment:
    """The finished ``command`` run folder ``name``; 409 for another kind of run or one still running."""
    experiment = tables.experiment(state.config.runs, name)
    if experiment.command != command:
        raise Conflict(f"{name!r} is a `{experiment.command}` run, not a {command}", f"choose a {command} run folder")
    if not experiment.finished:
        raise Conflict(f"the {command} in {name!r} has not finished", "wait for it to finish, or rerun it")
    return experiment


@router.post("/{name}/tables/{table}/query", response_model=TableRowsOut, responses=ERRORS)
def query_table(name: Name, table: Table, body: TableQuery, state: State) -> Response:
    """Rows of one table matching every filter (column equality, ranges, membership), a page at a time."""
    experiment = tables.experiment(state.config.runs, name)
    return json_response(tables.query(experiment, table, body.columns, [f.model_dump() for f in body.filters],
                                      body.limit, body.offset))
