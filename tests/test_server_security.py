"""The server's guard: loopback by default, a token for any other host, the Host check, files only from the runs
folder, size-limited uploads, no CORS, no pickle, and never a 5xx for bad input."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from cli_helpers import assert_user_error as assert_cli_error
from server_helpers import assert_user_error, serving

from lmxray.errors import LmxrayError
from lmxray.server import ServeConfig
from lmxray.server.config import is_loopback
from lmxray.server.security import COOKIE, inside

TOKEN = "t" * 20 + "0123456789"
SERVER_SRC = Path(__file__).resolve().parents[1] / "src" / "lmxray" / "server"


@pytest.fixture(scope="module")
def locked(tiny_dir, tmp_path_factory):
    """A server on every interface with a token (the TestClient plays a remote caller)."""
    with serving(tmp_path_factory.mktemp("runs"), [tiny_dir], host="0.0.0.0", token=TOKEN) as c:
        yield c


@pytest.fixture(scope="module")
def open_client(tiny_dir, tmp_path_factory):
    with serving(tmp_path_factory.mktemp("runs"), [tiny_dir], max_upload_mb=1) as c:
        yield c


def test_a_host_other_than_loopback_needs_a_token(tmp_path):
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.org"):
        assert not is_loopback(host)
        with pytest.raises(LmxrayError, match="no token"):
            ServeConfig(runs=tmp_path, host=host)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert is_loopback(host)
        ServeConfig(runs=tmp_path, host=host)
    with pytest.raises(LmxrayError, match="shorter than 16"):
        ServeConfig(runs=tmp_path, host="0.0.0.0", token="short")


def test_cli_refuses_bad_settings_before_serving(capsys, tmp_path):
    assert_cli_error(capsys, ["serve", "--host", "0.0.0.0", "--token", "short", "--runs", tmp_path], "16")
    assert_cli_error(capsys, ["serve", "--port", "70000", "--runs", tmp_path], "port")
    assert_cli_error(capsys, ["serve", "--max-upload-mb", "0", "--runs", tmp_path], "--max-upload-mb")
    (tmp_path / "file").write_text("x")
    assert_cli_error(capsys, ["serve", "--runs", tmp_path / "file"], "not a folder")


def test_the_token_is_required_and_accepted_three_ways(locked):
    assert_user_error(locked.get("/api/models"), 401, "token")
    assert_user_error(locked.get("/openapi.json"), 401, "token")
    assert_user_error(locked.get("/api/models", headers={"Authorization": "Bearer " + "x" * 30}), 401, "wrong")
    assert_user_error(locked.get("/api/models?token=nope"), 401, "wrong")
    assert locked.get("/api/models", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    visit = locked.get(f"/api/models?token={TOKEN}")
    assert visit.status_code == 200
    cookie = visit.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN}") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    locked.cookies.clear()
    assert locked.get("/api/models", headers={"Cookie": f"{COOKIE}={TOKEN}"}).status_code == 200
    assert_user_error(locked.get("/api/models", headers={"Cookie": f"{COOKIE}=wrong-token"}), 401, "wrong")
    assert_user_error(locked.get("/api/models", headers={"Cookie": 'bad"cookie'}), 401, "token")


def test_without_a_token_only_loopback_hosts_are_answered(open_client):
    assert open_client.get("/api/models").status_code == 200
    for host in ("localhost:8765", "127.0.0.1", "[::1]:80"):
        assert open_client.get("/api/models", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example:8765", "attacker.com", "127.0.0.1.nip.io"):
        assert_user_error(open_client.get("/api/models", headers={"Host": host}), 403, "this machine")


def test_names_cannot_leave_the_runs_folder(open_client, tmp_path):
    root = tmp_path / "runs"
    (root / "inside").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    assert inside(root, "inside") == Path(os.path.realpath(root / "inside"))
    for name in ("..", "../secret", "/etc", "link", "inside/../..", "", ".", "a\x00b"):
        with pytest.raises(LmxrayError):
            inside(root, name)
    runs = Path(open_client.app.state.lmxray.config.runs)
    (runs.parent / "elsewhere").mkdir(exist_ok=True)
    (runs.parent / "elsewhere" / "run.json").write_text('{"format": "lmxray.run/1", "command": "sweep"}')
    (runs / "escape").symlink_to(runs.parent / "elsewhere")
    for name in ("..", "escape", ".lmxray-store", "%2e%2e"):
        assert_user_error(open_client.get(f"/api/experiments/{name}"), 404)
        assert_user_error(open_client.post(f"/api/experiments/{name}/tables/rows/query", json={}), 404)
    assert "escape" not in [e["name"] for e in open_client.get("/api/experiments").json()["experiments"]]
    for run_id in ("..", "....", "0" * 31 + "/", "%2e%2e%2f%2e%2e"):
        assert_user_error(open_client.get(f"/api/runs/{run_id}/trace"), 404)


def test_uploads_are_size_limited(open_client):
    big = b"x" * (2**20 + 1)
    r = open_client.post("/api/uploads", files={"file": ("t.jsonl", big, "application/octet-stream")})
    assert_user_error(r, 413, "larger than the limit")

    def chunks():  # no Content-Length: the limit is enforced on the streamed bytes
        for _ in range(3):
            yield b"y" * 2**19

    r = open_client.post("/api/uploads", content=chunks(),
                         headers={"content-type": "multipart/form-data; boundary=b"})
    assert_user_error(r, 413, "larger than the limit")
    assert_user_error(open_client.post("/api/runs", content=b"x" * (9 * 2**20),
                                       headers={"content-type": "application/json"}), 413)
    assert not list((Path(open_client.app.state.lmxray.config.runs) / ".lmxray-uploads").glob("*")), \
        "an upload left a file behind"


def test_no_cors_headers(open_client):
    pre = open_client.options("/api/models", headers={"Origin": "https://evil.example",
                                                      "Access-Control-Request-Method": "GET"})
    got = open_client.get("/api/models", headers={"Origin": "https://evil.example"})
    for r in (pre, got):
        assert not [h for h in r.headers if h.lower().startswith("access-control-")], dict(r.headers)
    assert pre.status_code < 500


def test_bad_input_is_never_a_server_error(open_client, tiny_dir):
    spec = str(tiny_dir)
    cases = [("post", "/api/runs", {"content": b"\xff\xfe not json"}),
             ("post", "/api/runs", {"json": []}),
             ("post", "/api/runs", {"json": {"model": spec, "prompt": "x", "position": 10**40}}),
             ("post", "/api/runs", {"content": ('{"model": "%s", "prompt": "x\\udc80"}' % spec).encode(),
                                    "headers": {"content-type": "application/json"}}),
             ("post", "/api/runs", {"json": {"model": spec, "prompt": "x", "plan": {"layers": []}}}),
             ("post", "/api/runs", {"json": {"model": spec, "prompt": "x", "plan": {"threshold": "nan"}}}),
             ("get", "/api/runs?limit=-1", {}),
             ("get", "/api/runs?limit=abc", {}),
             ("get", "/api/runs/zz/maps/1e99", {}),
             ("get", "/api/compare?a=1", {}),
             ("post", "/api/jobs/sweep", {"json": {"model": spec, "folder": "a", "batch_size": 10**30}}),
             ("post", "/api/uploads", {"files": {"file": ("t.txt", b"hello")}}),
             ("post", "/api/uploads", {"files": {"file": ("t.jsonl", b"{not json\n")}}),
             ("post", "/api/uploads", {"files": {"file": ("t.safetensors", b"\x00" * 64)}}),
             ("post", "/api/uploads", {"data": {"file": "not a file"}}),
             ("post", "/api/experiments/x/tables/rows/query", {"json": {"filters": [{"column": 1}]}}),
             ("delete", "/api/models", {}),
             ("get", "/api/nothing/here", {})]
    for method, url, kwargs in cases:
        r = getattr(open_client, method)(url, **kwargs)
        assert 400 <= r.status_code < 500, f"{method.upper()} {url} {kwargs}: {r.status_code} {r.text[:200]}"
        assert set(r.json()) == {"error", "fix"}, r.text


def test_no_pickle_in_the_server():
    """Uploads and stored runs are read as JSON or safetensors only: nothing in server/ can unpickle."""
    banned_modules = {"pickle", "cPickle", "dill", "joblib", "shelve", "marshal"}
    for path in SERVER_SRC.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & banned_modules, path.name
            elif isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in banned_modules, path.name
            elif isinstance(node, ast.Attribute) and node.attr in ("load", "loads"):
                owner = node.value.id if isinstance(node.value, ast.Name) else None
                assert owner not in ("torch", "np", "numpy", "pickle"), f"{path.name}: {owner}.{node.attr}"
