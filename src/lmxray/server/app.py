"""create_app(config): the FastAPI app of `lmxray serve`, its routers, error handlers, guard and pages.

No CORS middleware: browsers keep other origins' pages from reading its answers. Telemetry is off and no
exporter is configured, so the server never opens a connection of its own.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from lmxray.server import api_experiments, api_jobs, api_models, api_runs, api_uploads, errors
from lmxray.server.config import ServeConfig
from lmxray.server.errors import NotFound
from lmxray.server.schemas import BaseModel
from lmxray.server.security import Guard
from lmxray.server.state import ServerState
from lmxray.server.static_files import PAGES, mount_pages
from lmxray.version import __version__

TITLE = "lmxray"
TELEMETRY_OFF = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False,
                 "auto_configure": False}


class HealthOut(BaseModel):
    version: str
    device: str
    queued: int  # model calls waiting on the device worker
    jobs_active: int


def create_app(config: ServeConfig) -> FastAPI:
    """The app serving ``config``'s models and runs folder; its state is closed when the app shuts down."""
    state = ServerState(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        state.close()

    app = FastAPI(title=TITLE, version=__version__, lifespan=lifespan, telemetry=TELEMETRY_OFF,
                  summary="An X-ray for causal language models: traces, maps, lens, flow, routes, heads, logits and "
                          "experiment tables over HTTP.")
    app.state.lmxray = state
    errors.install(app)
    app.add_middleware(Guard, config=config)
    for module in (api_models, api_runs, api_jobs, api_experiments, api_uploads):
        app.include_router(module.router)

    @app.get("/api/health", response_model=HealthOut, tags=["server"])
    def health() -> dict:
        """The server's version and how busy its device is."""
        return {"version": __version__, "device": state.registry.device,
                "queued": sum(w.pending for w in state.workers.all()),
                "jobs_active": sum(1 for j in state.jobs.list() if not j.is_finished)}

    @app.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                   include_in_schema=False)
    def unknown_api(path: str):
        """Any other /api path is a JSON 404, never the pages' index.html."""
        raise NotFound(f"no API path /api/{path}", "see /openapi.json for the API's paths")

    if (PAGES / "index.html").is_file():  # the explorer's pages, when built (make web); after every API route
        mount_pages(app)
    return app
