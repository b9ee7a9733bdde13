"""Experiments and uploads: sweep and profile folders under --runs browsed and queried (rows equal pyarrow's own
read, filtered by hand), a sweep run as a job, and uploaded traces (lmxray JSONL, .safetensors, rocmforge) stored
as runs whose views equal the library's."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from cli_helpers import run as run_cli
from server_helpers import assert_matches, assert_user_error, serving, wait_job
from test_trace_io import seed_fixture_lines

import lmxray
from lmxray.server.schemas import ExperimentOut, ExperimentsOut, ProfileOut, SweepOut, TableRowsOut, TraceOut, \
    TraceSummaryOut
from lmxray.trace.reader import read_trace
from lmxray.views import profile_view, sweep_view, trace_view


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def client(tiny_dir, runs):
    with serving(runs, [tiny_dir]) as c:
        yield c


@pytest.fixture(scope="module")
def swept(client, tiny_dir):
    """A sweep of 5 shipped pairs run as a job into runs/sw."""
    r = client.post("/api/jobs/sweep", json={"model": str(tiny_dir), "folder": "sw", "limit": 5, "batch_size": 2})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"])
    assert job["state"] == "done", job["error"]
    return job


def rows_by_hand(path_glob, columns, keep):
    """The rows of the Parquet files in dataset order, filtered by a Python predicate: the independent reading."""
    out = []
    for path in path_glob:
        table = pq.read_table(path)
        for row in table.to_pylist():
            if keep(row):
                out.append([row[c] for c in columns])
    return out


def test_a_sweep_job_writes_a_folder_whose_summary_is_the_library_view(client, runs, swept):
    expected = sweep_view(runs / "sw").to_dict()
    expected["run"] = "sw"
    assert swept["result"] == json.loads(json.dumps(expected)) and swept["result"]["pairs"] == 5
    summary = client.get("/api/experiments/sw/summary").json()
    assert summary == swept["result"]
    assert_matches(SweepOut, summary)


def test_experiments_are_listed_with_their_tables(client, runs, swept):
    listed = client.get("/api/experiments").json()
    assert_matches(ExperimentsOut, listed)
    (sw,) = [e for e in listed["experiments"] if e["name"] == "sw"]
    assert sw["command"] == "sweep" and sw["finished"]
    tables = {t["name"]: t for t in sw["tables"]}
    assert {"rows", "layers", "pairs", "summary", "bos_profile"} <= set(tables)
    parts = sorted((runs / "sw" / "parts").glob("part-*.parquet"))
    assert tables["rows"]["n_rows"] == sum(pq.read_metadata(p).num_rows for p in parts) == 5 * 3
    assert [c["name"] for c in tables["layers"]["columns"]] == pq.read_schema(runs / "sw" / "layers.parquet").names
    one = client.get("/api/experiments/sw").json()
    assert_matches(ExperimentOut, one)
    assert one == sw


def test_table_queries_equal_a_filtered_read(client, runs, swept):
    parts = sorted((runs / "sw" / "parts").glob("part-*.parquet"))
    columns = ["id", "layer", "js", "length_matched"]

    def query(**body):
        r = client.post("/api/experiments/sw/tables/rows/query", json={"columns": columns, **body})
        assert r.status_code == 200, r.text
        assert_matches(TableRowsOut, r.json())
        return r.json()

    got = query(filters=[{"column": "layer", "op": "eq", "value": 1}])
    assert got["rows"] == rows_by_hand(parts, columns, lambda r: r["layer"] == 1) and got["n_matched"] == 5
    cut = sorted(r[2] for r in rows_by_hand(parts, columns, lambda r: True))[7]
    got = query(filters=[{"column": "js", "op": "ge", "value": cut}, {"column": "layer", "op": "lt", "value": 2}])
    assert got["rows"] == rows_by_hand(parts, columns, lambda r: r["js"] >= cut and r["layer"] < 2)
    ids = sorted({r[0] for r in rows_by_hand(parts, columns, lambda r: True)})[:2]
    got = query(filters=[{"column": "id", "op": "in", "value": ids}, {"column": "layer", "op": "ne", "value": 0}])
    assert got["rows"] == rows_by_hand(parts, columns, lambda r: r["id"] in ids and r["layer"] != 0)
    everything = rows_by_hand(parts, columns, lambda r: True)
    page = query(limit=4, offset=6)
    assert page["rows"] == everything[6:10] and page["n_matched"] == len(everything)
    assert query(limit=10, offset=10_000)["rows"] == []
    whole = client.post("/api/experiments/sw/tables/pairs/query", json={}).json()
    table = pq.read_table(runs / "sw" / "pairs.parquet")
    assert whole["columns"] == table.column_names and len(whole["rows"]) == table.num_rows


def test_bad_queries_are_user_errors(client, swept):
    url = "/api/experiments/sw/tables/rows/query"
    assert_user_error(client.post(url, json={"columns": ["nope"]}), 422, "no column 'nope'")
    assert_user_error(client.post(url, json={"filters": [{"column": "layer", "value": "x"}]}), 422, "int32")
    assert_user_error(client.post(url, json={"filters": [{"column": "layer", "op": "in", "value": 1}]}), 422, "list")
    assert_user_error(client.post(url, json={"filters": [{"column": "layer", "op": "lt", "value": None}]}), 422, "null")
    assert_user_error(client.post(url, json={"filters": [{"column": "layer", "value": [1]}]}), 422, "one value")
    assert_user_error(client.post(url, json={"limit": 0}), 422, "limit")
    assert_user_error(client.post("/api/experiments/sw/tables/nope/query", json={}), 404, "no table")
    assert_user_error(client.post("/api/experiments/nope/tables/rows/query", json={}), 404, "no experiment")


def test_a_profile_folder_is_browsed(client, runs, tiny_dir, capsys, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("first sample of text\n\nsecond sample here\n\nthird one\n")
    code, _, err = run_cli(capsys, "profile", "--model", tiny_dir, "--corpus", f"mine={corpus}", "--out",
                           runs / "prof", "--max-tokens", "16")
    assert code == 0, err
    summary = client.get("/api/experiments/prof/summary").json()
    expected = profile_view(runs / "prof").to_dict()
    expected["run"] = "prof"
    assert summary == json.loads(json.dumps(expected))
    assert_matches(ProfileOut, summary)


def test_an_unfinished_run_has_no_summary_yet(client, runs):
    folder = runs / "half"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"format": "lmxray.run/1", "command": "sweep", "model": "m"}))
    assert_user_error(client.get("/api/experiments/half/summary"), 409, "not finished")
    (runs / "odd").mkdir()
    (runs / "odd" / "run.json").write_text("{broken")
    names = [e["name"] for e in client.get("/api/experiments").json()["experiments"]]
    assert "half" in names and "odd" not in names


@pytest.mark.parametrize("suffix", [".jsonl", ".safetensors"])
def test_uploaded_traces_become_runs(client, tiny_dir, tmp_path, suffix):
    trace = lmxray.load(str(tiny_dir)).trace("Uploaded prompt", plan=lmxray.CapturePlan(per_head=True))
    path = tmp_path / f"t{suffix}"
    trace.save(path)
    first = client.post("/api/uploads", files={"file": (path.name, path.read_bytes())})
    assert first.status_code == 200, first.text
    assert_matches(TraceOut, first.json())
    assert not first.json()["hit"] and first.json()["run"]["model_id"].startswith("upload:")
    again = client.post("/api/uploads", files={"file": (path.name, path.read_bytes())}).json()
    assert again["hit"] and again["run"]["run_id"] == first.json()["run"]["run_id"]
    summary = client.get(f"/api/runs/{again['run']['run_id']}/summary").json()
    assert_matches(TraceSummaryOut, summary)
    assert summary == json.loads(json.dumps(trace_view(read_trace(path), strict=False).to_dict()))


def test_a_rocmforge_trace_is_uploaded(client, tmp_path):
    """The seed's forward-graph file, edges and embeddings (its per-position component nodes have no dense form yet:
    the .safetensors writer refuses them, as `lmxray convert` does, with one line)."""
    lines = seed_fixture_lines()
    full = tmp_path / "full.jsonl"
    full.write_text("".join(json.dumps(r) + "\n" for r in lines))
    refused = client.post("/api/uploads", files={"file": ("full.jsonl", full.read_bytes())})
    assert_user_error(refused, 422, "full.jsonl was read but cannot be stored")
    assert "/" not in refused.json()["error"], "the server's paths stay out of the message"
    path = tmp_path / "seed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines
                            if r["record"] != "node" or r["component"] in ("input_embedding", "logits", "confidence")))
    r = client.post("/api/uploads", files={"file": ("seed.jsonl", path.read_bytes())})
    assert r.status_code == 200, r.text
    rid = r.json()["run"]["run_id"]
    summary = client.get(f"/api/runs/{rid}/summary").json()
    assert summary == json.loads(json.dumps(trace_view(read_trace(path), strict=False).to_dict()))
    layer = client.get(f"/api/runs/{rid}/maps/0").json()
    assert layer["values"] == read_trace(path).attention[0].tolist()


def test_a_bad_upload_names_the_file_not_the_server_path(client):
    r = client.post("/api/uploads", files={"file": ("mine.jsonl", b'{"record": "meta"}\n{oops\n')})
    assert_user_error(r, 422, "mine.jsonl:2")
    assert ".lmxray-uploads" not in r.json()["error"]
    assert_user_error(client.post("/api/uploads", files={"file": ("notes.txt", b"x")}), 400, "suffix")
