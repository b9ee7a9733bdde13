"""The explorer's pages over HTTP: the built bundle, JavaScript with an explicit MIME type, index.html for deep links.

Mounted last on the app (after the /api routers), so an API path always reaches the API: an unknown one is a JSON 404
there, never the page. Any other path that names no file (a permalink such as ``/runs/abc?view=maps``) gets
index.html with a ``<base href>`` at the mount's root, so its relative asset and API paths resolve as from ``/``;
the page reads its state from the URL.
"""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from lmxray.errors import LmxrayError

PAGES = Path(__file__).resolve().with_name("static")
JS_TYPE = "application/javascript; charset=utf-8"  # not left to the system's MIME table (some map .js to text/plain)
NOT_PAGES = ("api", "assets")  # prefixes whose unknown paths stay 404s


class PageFiles(StaticFiles):
    """StaticFiles over the built pages with the SPA fallback, explicit JS type and cache headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as e:
            if e.status_code != 404 or not is_page_path(path):
                raise
            response = self.deep_link_page(scope)
        if path.endswith((".js", ".mjs")):
            response.headers["content-type"] = JS_TYPE
        # hashed asset names never change content; the page itself must be revalidated to pick up a new build
        response.headers["cache-control"] = ("public, max-age=31536000, immutable" if path.startswith("assets/")
                                             else "no-cache")
        return response


    def deep_link_page(self, scope: Scope) -> HTMLResponse:
        """index.html for a path below the root, its relative URLs anchored at the mount's root by a base tag."""
        root = scope.get("root_path", "").rstrip("/") + "/"
        html = (Path(self.directory) / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("<head>", f'<head>\n    <base href="{root}" />', 1))


def is_page_path(path: str) -> bool:
    """Whether a missing ``path`` (relative, no leading slash) is a deep link that index.html answers."""
    first, _, rest = path.strip("/").partition("/")
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return first not in NOT_PAGES and "." not in last


def pages_app(directory: Path | str = PAGES) -> PageFiles:
    """The ASGI app serving the pages in ``directory``; a folder without index.html is a one-line error."""
    directory = Path(directory)
    if not (directory / "index.html").is_file():
        raise LmxrayError(f"the explorer pages are not built ({directory / 'index.html'} is missing)",
                          "run `make web` (npm ci && npm run build in web/), or install a lmxray wheel")
    return PageFiles(directory=directory, html=True)


def mount_pages(app, directory: Path | str = PAGES) -> None:
    """Serve the pages at ``/`` on ``app`` (a FastAPI or Starlette app); call it after every API router."""
    app.mount("/", pages_app(directory), name="pages")
