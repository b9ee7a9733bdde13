"""Every error the API returns is JSON ``{"error": ..., "fix": ...}`` with a 4xx status; user input never gives a 5xx.

Library user errors (``LmxrayError``) are 422 unless their class says otherwise; the server's own kinds
(not found, conflict, too large, bad request) carry their status. Request validation errors keep FastAPI's
422 in the same shape, naming the first bad field.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from lmxray.capture.budget import CaptureTooBig
from lmxray.errors import LmxrayError

log = logging.getLogger("lmxray.server")


class ApiError(LmxrayError):
    """A user error with an HTTP status (400: a request the server cannot read)."""

    status = 400


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    """The request is fine but the thing it names is not in a state to serve it (a job still running...)."""

    status = 409


class TooLarge(ApiError):
    status = 413


class Unauthorized(ApiError):
    status = 401


def status_of(e: LmxrayError) -> int:
    """The HTTP status of a user error: its own, 413 for a capture that does not fit in memory, else 422."""
    if isinstance(e, ApiError):
        return e.status
    if isinstance(e, CaptureTooBig):
        return 413
    return 422


def error_body(problem: str, fix: str | None) -> dict:
    return {"error": problem, "fix": fix}


def error_response(e: LmxrayError) -> JSONResponse:
    return JSONResponse(error_body(e.problem, e.fix), status_code=status_of(e))


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the ``{error, fix}`` shape."""

    async def user_error(_: Request, e: LmxrayError) -> JSONResponse:
        return error_response(e)

    async def validation_error(_: Request, e: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(*describe_validation(e.errors())), status_code=422)

    async def http_error(_: Request, e: HTTPException) -> JSONResponse:
        problem = e.detail if isinstance(e.detail, str) else str(e.detail)
        fixes = {404: "check the path; GET /api/models and /api/runs list what there is",
                 405: "check the method in GET /openapi.json", 413: "send a smaller request body"}
        return JSONResponse(error_body(problem, fixes.get(e.status_code, "check the request against /openapi.json")),
                            status_code=e.status_code, headers=getattr(e, "headers", None))

    async def internal_error(_: Request, e: Exception) -> JSONResponse:
        log.exception("internal error")
        return JSONResponse(error_body(f"internal error: {type(e).__name__}", "this is a bug in lmxray; please report "
                                       "it with the request that caused it"), status_code=500)

    app.add_exception_handler(LmxrayError, user_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)


def describe_validation(errors) -> tuple[str, str]:
    """One line for FastAPI's list of validation errors: where the first one is and what was wrong."""
    errors = list(errors)
    if not errors:
        return "the request is not valid", "check the request against /openapi.json"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "the request"
    message = str(first.get("msg", "is not valid")).rstrip(".")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}", "check the request against /openapi.json"
