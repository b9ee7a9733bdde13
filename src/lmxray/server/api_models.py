"""/api/models: the served models and their load state; load one ahead of its first use."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from lmxray.server.schemas import ErrorOut, LoadRequest, ModelOut, ModelsOut
from lmxray.server.state import ServerState, server_state

router = APIRouter(prefix="/api", tags=["models"])
State = Annotated[ServerState, Depends(server_state)]
ERRORS = {404: {"model": ErrorOut}, 422: {"model": ErrorOut}}


@router.get("/models", response_model=ModelsOut)
def list_models(state: State) -> dict:
    """Every model this server may use (its --model SPECs), loaded or not."""
    return {"models": [e.to_dict() for e in state.registry.entries()]}


@router.post("/models/load", response_model=ModelOut, responses=ERRORS)
def load_model(body: LoadRequest, state: State) -> dict:
    """Load a served model now (on its device's worker) rather than on its first use; returns its state."""
    state.registry.get(body.model)
    return state.registry.entry(body.model).to_dict()
