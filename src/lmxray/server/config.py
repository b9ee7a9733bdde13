"""The server's settings, checked once: which models it serves, where runs live, how it binds and who may call it."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from lmxray.errors import LmxrayError
from lmxray.models.builtin import DEFAULT_MODEL

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MODELS = (DEFAULT_MODEL,)  # the built-in SmolLM2 GGUF
DEFAULT_UPLOAD_MB = 256
DEFAULT_STORE_MB = 2048
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach (localhost, 127.0.0.0/8, ::1)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh access token (as Jupyter prints one): 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one `lmxray serve`. A host other than loopback needs a token; the token may be set on loopback too.

    ``models`` are the SPECs the server may load (lazily, on first use); requests name one of them and
    nothing else, so a caller can never make the server open an arbitrary path.
    """

    runs: Path  # the runs folder: the run store lives under it, sweep and profile folders are browsed in it
    models: tuple[str, ...] = DEFAULT_MODELS
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None  # None: no token asked (loopback only)
    device: str = "auto"
    dtype: str = "auto"
    max_upload_mb: int = DEFAULT_UPLOAD_MB
    store_mb: int = DEFAULT_STORE_MB  # the run store's size limit; least recently used runs are evicted past it
    allowed_hosts: tuple[str, ...] = field(default=())  # Host header names accepted besides loopback and ``host``

    def __post_init__(self):
        object.__setattr__(self, "runs", Path(self.runs))
        object.__setattr__(self, "models", tuple(dict.fromkeys(self.models or DEFAULT_MODELS)))
        if not all(isinstance(m, str) and m.strip() for m in self.models):
            raise LmxrayError(f"every --model must name a model, got {list(self.models)}",
                              "pass --model SPEC (a built-in alias, .gguf file, HF directory or cached hub id)")
        if not is_loopback(self.host) and not self.token:
            raise LmxrayError(f"--host {self.host} is reachable from other machines and no token is set",
                              "serve on 127.0.0.1, or let `lmxray serve` generate a token (it prints the URL)")
        if self.token is not None and len(self.token) < 16:
            raise LmxrayError("the token is shorter than 16 characters", "use a longer token, or let lmxray make one")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise LmxrayError(f"--port {self.port} is not a TCP port", "pass a port in 1..65535, or 0 for a free one")
        for name, value in (("--max-upload-mb", self.max_upload_mb), ("--store-mb", self.store_mb)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LmxrayError(f"{name} must be a whole number of at least 1, got {value!r}",
                                  f"pass e.g. {name} 256")
        if self.runs.exists() and not self.runs.is_dir():
            raise LmxrayError(f"--runs {self.runs} is not a folder", "pass a folder (it is created when missing)")

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 2**20

    @property
    def store_bytes(self) -> int:
        return self.store_mb * 2**20

    def host_names(self) -> frozenset[str]:
        """Host header names (without port) a request may carry: a DNS-rebinding page names some other host."""
        return frozenset({*LOOPBACK_NAMES, "[::1]", self.host, *self.allowed_hosts})
