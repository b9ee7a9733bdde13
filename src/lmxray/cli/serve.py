"""`lmxray serve`: the explorer's HTTP API (and pages, when built) on this machine, under uvicorn."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import Optional

import typer

from lmxray.cli.app import DeviceOpt, DtypeOpt, app, err, out
from lmxray.errors import LmxrayError


@app.command()
def serve(
    model: Optional[list[str]] = typer.Option(None, "--model", "-m", help="A model the server may load (repeatable): "
                                              "built-in alias, .gguf file, HF directory, cached hub id or "
                                              "random:SPEC. Default: smollm2 (built in). Models load on first use."),
    runs: Path = typer.Option(Path("runs"), "--runs", help="The runs folder: the run store lives in it, and its "
                              "sweep and profile run folders can be browsed."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Any other than loopback needs a token, "
                             "which is generated and printed."),
    port: int = typer.Option(8765, "--port", help="Port to bind (0: a free one)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the URL in a browser once the server is up."),
    token: Optional[str] = typer.Option(None, "--token", envvar="LMXRAY_TOKEN", help="The access token to require "
                                        "(default: generated when --host is not loopback, none on loopback)."),
    max_upload_mb: int = typer.Option(256, "--max-upload-mb", help="Largest trace upload accepted, in MiB."),
    store_mb: int = typer.Option(2048, "--store-mb", help="Size limit of the run store in MiB (least recently used "
                                 "runs are evicted past it)."),
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
):
    """Serve models and runs over HTTP: trace prompts, read maps, lens and flow, run jobs, browse experiments."""
    import uvicorn

    from lmxray.server import ServeConfig, create_app
    from lmxray.server.config import DEFAULT_MODELS, is_loopback, new_token

    if token is None and not is_loopback(host):
        token = new_token()
    config = ServeConfig(runs=runs, models=tuple(model or ()) or DEFAULT_MODELS, host=host, port=port, token=token,
                         device=device, dtype=dtype, max_upload_mb=max_upload_mb, store_mb=store_mb)
    sock = bind(host, port)
    config = dataclasses.replace(config, port=sock.getsockname()[1])
    api = create_app(config)
    url = public_url(host, config.port, token)
    server = uvicorn.Server(uvicorn.Config(api, log_level="warning", access_log=False, timeout_graceful_shutdown=5))
    out.print(f"lmxray serve: {', '.join(config.models)} on {api.state.lmxray.registry.device} "
              f"(runs in {config.runs})", markup=False, highlight=False)
    out.print(f"open {url}", markup=False, highlight=False, soft_wrap=True)
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    err.print("lmxray serve stopped", markup=False)


def public_url(host: str, port: int, token: str | None) -> str:
    """The URL to open: a wildcard bind is reached through loopback here; ``?token=`` sets the page's cookie."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/" + (f"?token={token}" if token else "")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), or one line saying why it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: without it a keep-alive client waits ~40 ms per answer (Nagle + delayed ACK)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise LmxrayError(f"cannot listen on {host}:{port}: {e.strerror or e}",
                          "choose another --port (0 picks a free one), or stop what holds it") from None
    sock.listen(128)
    return sock
