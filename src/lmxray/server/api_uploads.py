"""/api/uploads: open a trace file someone has (lmxray JSONL, .safetensors, rocmforge JSONL) as a stored run.

The body is counted as it arrives (the guard refuses it past --max-upload-mb with 413), the file is written
inside the runs folder under a random name, read by lmxray's own readers (JSON and safetensors only; no
pickle), stored, and removed. An upload is keyed by the hash of its bytes: the same file again is a hit.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, UploadFile
from fastapi.responses import Response

from lmxray.capture.plan import CapturePlan
from lmxray.errors import LmxrayError
from lmxray.server.errors import ApiError
from lmxray.server.responses import json_response
from lmxray.server.schemas import ErrorOut, TraceOut
from lmxray.server.state import ServerState, server_state
from lmxray.trace.reader import read_trace

router = APIRouter(prefix="/api", tags=["runs"])
State = Annotated[ServerState, Depends(server_state)]
UPLOADS = ".lmxray-uploads"  # under --runs; hidden, so it is never listed as an experiment
SUFFIXES = (".jsonl", ".json", ".safetensors")
CHUNK = 2**20


@router.post("/uploads", response_model=TraceOut,
             responses={400: {"model": ErrorOut}, 413: {"model": ErrorOut}, 422: {"model": ErrorOut}})
def upload(file: UploadFile, state: State) -> Response:
    """Store an uploaded trace as a run (multipart field ``file``; the format follows its name's suffix)."""
    name = Path(file.filename or "").name
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise ApiError(f"cannot tell the format of the upload {name or '(no name)'!r} from its suffix",
                       "name it .jsonl (lmxray or rocmforge JSON lines) or .safetensors (lmxray dense trace)")
    folder = state.config.runs / UPLOADS
    folder.mkdir(exist_ok=True)
    tmp = folder / f"{secrets.token_hex(16)}{suffix}"
    try:
        digest = _copy(file, tmp)
        trace = _read(tmp, name)
    finally:
        tmp.unlink(missing_ok=True)
    model_id = f"upload:{digest}"
    plan = _plan(trace.capture)
    prompt = trace.prompt or list(trace.token_ids)
    key = state.store.key(model_id, prompt, plan, trace.position)
    record = state.store.get(key)
    hit = record is not None
    if not hit:
        record = _put(state, key, trace, model_id, prompt, plan, name)
    return json_response({"run": record.to_dict(), "hit": hit})


def _put(state: ServerState, key: str, trace, model_id: str, prompt, plan: CapturePlan, name: str):
    """Store the upload's trace; a trace the dense format cannot hold is a user error naming the upload."""
    try:
        return state.store.put(key, trace, model_id=model_id, model_name=trace.model.name, prompt=prompt, plan=plan)
    except LmxrayError as e:
        reason = e.problem.split(": ", 1)[-1] if e.problem.startswith("cannot write ") else e.problem
        raise LmxrayError(f"{name} was read but cannot be stored as a .safetensors run: {reason}",
                          "upload a trace written by `lmxray trace`, or convert it with `lmxray convert` first") \
            from None


def _copy(file: UploadFile, target: Path) -> str:
    """Copy the upload to ``target``; the sha256 of its bytes."""
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        while chunk := file.file.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _read(path: Path, name: str):
    """The trace in ``path``; its errors name the uploaded file, not the server's temporary path."""
    try:
        return read_trace(path)
    except LmxrayError as e:
        raise LmxrayError(e.problem.replace(str(path), name), e.fix) from None


def _plan(capture: dict) -> CapturePlan:
    """The trace's own capture plan when it records one (lmxray traces do; rocmforge files do not)."""
    try:
        return CapturePlan.from_dict(dict(capture))
    except (LmxrayError, TypeError):
        return CapturePlan()

