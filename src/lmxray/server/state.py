"""What one server holds while it runs: its settings, device workers, served models, run store and jobs."""

from __future__ import annotations

from fastapi import Request

from lmxray.server.config import ServeConfig
from lmxray.server.devices import Workers
from lmxray.server.jobs import Jobs
from lmxray.server.open_runs import OpenRuns
from lmxray.server.registry import Registry
from lmxray.store import TraceStore


class ServerState:
    """Built once by ``create_app``; the routers reach it as ``request.app.state.lmxray``."""

    def __init__(self, config: ServeConfig):
        config.runs.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.workers = Workers()
        self.registry = Registry(config.models, config.device, config.dtype, self.workers)
        self.store = TraceStore(config.runs, max_bytes=config.store_bytes)
        self.open_runs = OpenRuns(self.store)
        self.jobs = Jobs()

    def close(self) -> None:
        """Cancel the jobs, let the workers finish what they hold, close the store's index."""
        self.jobs.close()
        self.workers.close()
        self.store.close()


def server_state(request: Request) -> ServerState:
    """FastAPI dependency: the state of the app serving ``request``."""
    return request.app.state.lmxray
