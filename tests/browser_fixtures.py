"""The browser tests' fixtures, a pytest plugin their modules load (``pytest_plugins = ["browser_fixtures"]``): one
`lmxray serve` and one chromium shared by every browser test of the session, started by the first test that asks and
closed after the last one, so that the tests after them do not run beside Playwright's event loop (which counts as
running in the main thread, and would refuse their asyncio.run), and a fresh guarded page for each test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import pytest
from browser_helpers import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, LOOPBACK, LiveServe

from lmxray.server.static_files import PAGES
from tiny_models import save_tiny

SHARED = {"server", "browser"}  # the fixtures whose objects the session's browser tests share
_started: dict[str, Any] = {}  # name -> the shared object, or the exception its start raised (each asker gets it)
_closers: list[Callable[[], None]] = []  # how to close what was started, in the order it was started
_last: list[pytest.Item] = []  # the session's last test that uses a shared object: after it they are closed


def shared(name: str, start: Callable[[], Any], close: Callable[[Any], None]) -> Any:
    """The one ``name`` of the session: started on the first ask, or the error that start raised, raised again."""
    if name not in _started:
        try:
            value = _started[name] = start()
        except Exception as e:  # as pytest does for a failed scoped fixture: the later tests fail at once, alike
            _started[name] = e
        else:
            _closers.append(lambda: close(value))
    if isinstance(_started[name], Exception):
        raise _started[name]
    return _started[name]


def close_shared() -> None:
    """Close what the browser tests started, last started first."""
    try:
        while _closers:
            _closers.pop()()
    finally:
        _started.clear()


def pytest_collection_finish(session: pytest.Session) -> None:
    _last[:] = [item for item in session.items if SHARED & set(getattr(item, "fixturenames", ()))][-1:]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    try:
        return (yield)  # the test's own fixtures first: its page is closed before the browser
    finally:
        if _last and item is _last[0]:
            close_shared()


def pytest_sessionfinish() -> None:
    close_shared()  # a session stopped before its last browser test (-x, ^C)


@pytest.fixture()
def server(tmp_path_factory) -> LiveServe:
    """`lmxray serve` on a tiny random llama, with its runs in a temporary folder."""

    def start() -> LiveServe:
        assert (PAGES / "index.html").is_file(), f"{PAGES}/index.html is missing: run `make web`"
        model = str(save_tiny("llama", tmp_path_factory.mktemp("tiny-llama")))
        return LiveServe(model, tmp_path_factory.mktemp("runs"))

    return shared("server", start, LiveServe.close)


@pytest.fixture()
def browser():
    """Debian's chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: run `make dev` (it installs Debian's chromium)"
    playwright = shared("playwright", lambda: sync_playwright().start(), lambda p: p.stop())
    return shared("browser", lambda: playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS),
                  lambda b: b.close())


@pytest.fixture()
def page(browser, request):
    """A fresh page whose every request is recorded; one that would leave loopback is aborted and fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    seen, outside, problems, failed = [], [], [], []

    def guard(route):
        url = route.request.url
        seen.append(url)
        host = urlparse(url).hostname or ""
        if url.startswith(("data:", "blob:", "file:")) or host in LOOPBACK:  # file: a report opened from disk
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", guard)
    pg = context.new_page()
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load resource")
          and problems.append(f"console: {m.text}"))
    pg.on("response", lambda r: r.status >= 400 and failed.append(f"HTTP {r.status} {r.url}"))
    pg.seen, pg.allow_http_errors = seen, False
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not outside, f"requests left loopback: {outside}"
    assert seen, "the page made no request at all"
    assert not problems, f"the page reported errors: {problems}"
    assert pg.allow_http_errors or not failed, f"requests failed: {failed}"
