"""/api/experiments: browse the sweep and profile run folders under --runs and query their Parquet tables."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from lmxray.server import tables
from lmxray.server.errors import Conflict
from lmxray.server.responses import json_response
from lmxray.server.schemas import (ErrorOut, ExperimentOut, ExperimentsOut, ExperimentSummaryOut, SweepCurvesOut,
                                   TableQuery, TableRowsOut)
from lmxray.server.state import ServerState, server_state
from lmxray.analysis.bootstrap import BAND_LEVEL, curve_bands
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


@router.get("/{name}/curves", response_model=SweepCurvesOut, responses=ERRORS)
def sweep_curves(name: Name, state: State) -> Response:
    """A finished sweep's per-layer curves per category: mean JS with its bootstrap band (the band its figure
    draws) and the first-position share."""
    experiment = _finished(state, name, "sweep")
    layers = experiment.dataset("layers").to_table(columns=["id", "category", "layer", "js"]).to_pydict()
    ids = list(dict.fromkeys(layers["id"]))
    n_layers = len(layers["id"]) // max(1, len(ids))
    first_row = {pid: i * n_layers for i, pid in enumerate(ids)}
    categories = [layers["category"][first_row[pid]] for pid in ids]
    js = [layers["js"][first_row[pid]:first_row[pid] + n_layers] for pid in ids]
    profile = experiment.dataset("bos_profile").to_table(columns=["category", "layer", "bos_share"]).to_pydict()
    shares: dict[str, list] = {}
    for category, layer, share in zip(profile["category"], profile["layer"], profile["bos_share"], strict=True):
        shares.setdefault(category, [None] * n_layers)[layer] = share
    curves = [{"category": c, "n_pairs": categories.count(c), "js_mean": mean.tolist(), "js_lo": lo.tolist(),
               "js_hi": hi.tolist(), "first_share": shares.get(c, [None] * n_layers)}
              for c, (mean, lo, hi) in curve_bands(categories, js).items()] if ids else []
    return json_response({"run": name, "layers": n_layers, "level": BAND_LEVEL, "categories": curves})


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
