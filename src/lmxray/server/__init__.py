"""`lmxray serve`: live models and stored runs behind one HTTP API (FastAPI under uvicorn). See docs/server.md.

    from lmxray.server import ServeConfig, create_app
    app = create_app(ServeConfig(runs="runs", models=("smollm2",)))
"""

from lmxray.server.app import create_app
from lmxray.server.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]
