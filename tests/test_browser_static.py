"""The pages' static serving (server/static_files.py): SPA fallback for deep links, explicit JS type, no fallback
for API or asset paths, a one-line error when the pages are not built. No browser needed."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from lmxray.errors import LmxrayError
from lmxray.server.static_files import JS_TYPE, is_page_path, mount_pages, pages_app

INDEX = "<!doctype html><head><title>lmxray</title><script type=module src=./assets/app-1.js></script>"


@pytest.fixture()
def client(tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX)
    (tmp_path / "assets" / "app-1.js").write_text("console.log(1)")
    (tmp_path / "assets" / "app-1.css").write_text("body{}")
    app = Starlette(routes=[Route("/api/health", lambda r: JSONResponse({"ok": True}))])
    mount_pages(app, tmp_path)
    return TestClient(app)


def test_index_and_deep_links_get_the_page(client):
    for path in ("/", "/?view=maps&run=ab", "/runs/0123abcd", "/explore/deep/link?layer=3"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html"), path
        assert r.headers["cache-control"] == "no-cache"
        # below the root, relative asset and API paths must still resolve from the root
        assert r.text == (INDEX if path.startswith("/?") or path == "/" else INDEX.replace(
            "<head>", '<head>\n    <base href="/" />')), path


def test_javascript_has_an_explicit_type_and_assets_are_immutable(client):
    r = client.get("/assets/app-1.js")
    assert r.status_code == 200 and r.headers["content-type"] == JS_TYPE
    assert "immutable" in r.headers["cache-control"]
    assert client.get("/assets/app-1.css").headers["content-type"].startswith("text/css")


def test_api_and_missing_files_are_not_answered_with_the_page(client):
    assert client.get("/api/health").json() == {"ok": True}
    for path in ("/api/nope", "/api/runs/x/summary", "/assets/missing.js", "/missing.png", "/favicon.ico"):
        assert client.get(path).status_code == 404, path


@pytest.mark.parametrize("path, page", [("runs/ab", True), ("", True), ("api", False), ("api/x", False),
                                        ("assets/x", False), ("a/b.js", False), ("v1.2/run", True)])
def test_is_page_path(path, page):
    assert is_page_path(path) is page


def test_unbuilt_pages_are_one_line_with_the_fix(tmp_path):
    with pytest.raises(LmxrayError, match="not built") as e:
        pages_app(tmp_path)
    assert "make web" in e.value.fix and "\n" not in str(e.value)


def test_a_deep_link_under_a_mount_prefix_bases_at_that_prefix(tmp_path):
    from starlette.routing import Mount

    (tmp_path / "index.html").write_text(INDEX)
    client = TestClient(Starlette(routes=[Mount("/explorer", app=pages_app(tmp_path))]))
    assert '<base href="/explorer/" />' in client.get("/explorer/runs/ab?view=lens").text
