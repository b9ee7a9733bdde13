"""Who may call the server and how much they may send: the Host check, the token, the body-size limit, safe paths.

One ASGI middleware in front of the app: without a token it accepts only requests addressed to a loopback name
(a DNS-rebinding page names its own host); with a token every request must carry it (``Authorization: Bearer``,
``?token=`` or the cookie that a ``?token=`` visit sets, as Jupyter does). Bodies are counted as they stream in,
so an oversized upload is refused with 413 before it fills the disk.
"""

from __future__ import annotations

import json
import os
import secrets
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs

from starlette.exceptions import HTTPException

from lmxray.server.config import ServeConfig
from lmxray.server.errors import NotFound, error_body

COOKIE = "lmxray_token"
JSON_BODY_LIMIT = 8 * 2**20  # every request but an upload: prompts and filters are small
UPLOAD_PATH = "/api/uploads"


class PayloadTooLarge(HTTPException):
    """Raised from inside ``receive`` when a body grows past its limit; FastAPI passes HTTPExceptions through."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than the limit of {limit / 2**20:g} MiB")


class Guard:
    """ASGI middleware: Host header, token and body-size checks before the app sees a request."""

    def __init__(self, app, config: ServeConfig):
        self.app, self.config = app, config
        self.hosts = config.host_names()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            return await _send_json(send, *refusal)
        limit = self.config.max_upload_bytes if scope.get("path") == UPLOAD_PATH else JSON_BODY_LIMIT
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            return await _send_json(send, 413, PayloadTooLarge(limit).detail, _too_large_fix(limit))
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(limit)
            return message

        visit = self.config.token and _query_token(scope) is not None  # a ?token= visit: remember it in a cookie
        await self.app(scope, counted, _setting_cookie(send, self.config.token) if visit else send)

    def _refusal(self, scope, headers: dict) -> tuple[int, str, str] | None:
        """(status, error, fix) when the request may not go through, else None."""
        token = self.config.token
        if not token:
            host = _host_name(headers.get("host", ""))
            if host not in self.hosts:
                return (403, f"requests must be addressed to this machine (Host {host or 'missing'})",
                        f"open http://127.0.0.1:{self.config.port}/ on the machine running lmxray serve")
            return None
        given = _bearer(headers) or _query_token(scope) or _cookie_token(headers)
        if given is None:
            return 401, "this server needs its token", "open the URL `lmxray serve` printed (it ends in ?token=...)" \
                " or send Authorization: Bearer TOKEN"
        if not secrets.compare_digest(given.encode(), token.encode()):
            return 401, "the token is wrong", "use the token `lmxray serve` printed at start"
        return None


def _setting_cookie(send, token: str):
    """``send`` with the token's cookie added to the response's headers (HttpOnly: page scripts never see it)."""
    cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict".encode("latin-1")

    async def send_with_cookie(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), (b"set-cookie", cookie)]}
        await send(message)

    return send_with_cookie


def _too_large_fix(limit: int) -> str:
    if limit == JSON_BODY_LIMIT:
        return "send a smaller request"
    return "send a smaller file, or restart the server with a larger --max-upload-mb"


async def _send_json(send, status: int, problem: str, fix: str) -> None:
    body = json.dumps(error_body(problem, fix)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _host_name(host: str) -> str:
    """The Host header without its port (``[::1]:8765`` -> ``[::1]``, ``localhost:80`` -> ``localhost``)."""
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _bearer(headers: dict) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _query_token(scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


def _cookie_token(headers: dict) -> str | None:
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except CookieError:  # a malformed cookie header carries no token
        return None
    return cookie[COOKIE].value if COOKIE in cookie else None


def inside(root: Path, name: str, what: str = "file") -> Path:
    """``root / name`` resolved, refused unless it stays inside ``root`` (no ``..``, absolute path or symlink out)."""
    base = Path(os.path.realpath(root))
    target = None if "\x00" in name else Path(os.path.realpath(base / name))
    if target is None or not target.is_relative_to(base) or target == base:
        raise NotFound(f"no {what} {name!r} in the runs folder", "name a folder listed by GET /api/experiments")
    return target
