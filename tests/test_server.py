"""The server's run endpoints on a tiny model: every number equals the library's for the same trace, the run
store answers repeats without a forward pass, and bad input is a one-line 4xx."""

from __future__ import annotations

import json

import numpy as np
import pytest
from server_helpers import ForwardCounter, assert_matches, assert_user_error, serving, state

import lmxray
from lmxray.server.schemas import HeadMapsOut, MapOut, RunsOut, TopKOut, TraceOut, TraceSummaryOut
from lmxray.store import RunRecord
from lmxray.trace.reader import read_trace
from lmxray.views import (CompareView, ConvergenceView, LensView, compare_view, convergence_view, lens_view,
                          trace_view)

FP32_TOL = 1e-5  # a fresh trace of the same prompt against the stored one (same weights, same CPU kernels)
PROMPT = "The cat sat on the mat"


@pytest.fixture(scope="module")
def client(tiny_dir, tmp_path_factory):
    with serving(tmp_path_factory.mktemp("runs"), [tiny_dir]) as c:
        yield c


@pytest.fixture(scope="module")
def spec(tiny_dir):
    return str(tiny_dir)


def plain_json(data):
    """What the library's dict looks like after a trip through JSON (tuples as lists, int keys as str)."""
    return json.loads(json.dumps(data))


def traced(client, spec, prompt=PROMPT, **plan):
    r = client.post("/api/runs", json={"model": spec, "prompt": prompt, "plan": plan})
    assert r.status_code == 200, r.text
    assert_matches(TraceOut, r.json())
    return r.json()


def stored(client, run_id):
    """The run's trace read straight from its file by the trace reader (not through the server)."""
    return read_trace(state(client).store.trace_path(run_id))


def test_models_are_listed_and_load_lazily(client, spec, tiny_dir):
    models = client.get("/api/models").json()["models"]
    assert [m["spec"] for m in models] == [spec] and models[0]["device"] == "cpu"
    loaded = client.post("/api/models/load", json={"model": spec}).json()
    assert loaded["state"] == "loaded" and loaded["max_positions"] == 64
    assert loaded["info"] == plain_json(lmxray.load(str(tiny_dir)).info.__dict__)
    assert_user_error(client.post("/api/models/load", json={"model": "gpt-17"}), 404, "not served")


def test_a_repeat_is_a_hit_that_runs_no_forward_pass(client, spec):
    loaded = state(client).registry.get(spec)
    counter = ForwardCounter(loaded.model.hf)
    try:
        first = traced(client, spec, "A cache test prompt", per_head=True)
        passes = counter.calls
        again = traced(client, spec, "A cache test prompt", per_head=True)
        other_plan = traced(client, spec, "A cache test prompt", per_head=False)
    finally:
        counter.remove()
    assert not first["hit"] and passes >= 1
    assert again["hit"] and again["run"]["run_id"] == first["run"]["run_id"]
    assert counter.calls == passes + 1, f"the hit ran {counter.calls - passes - 1} extra forward passes"
    assert not other_plan["hit"] and other_plan["run"]["run_id"] != first["run"]["run_id"]


def test_run_views_equal_the_library_on_the_stored_trace(client, spec, tiny_dir):
    run = traced(client, spec, per_head=True)["run"]
    rid, trace = run["run_id"], stored(client, run["run_id"])
    model = lmxray.load(str(tiny_dir))
    fresh = model.trace(PROMPT, plan=lmxray.CapturePlan(per_head=True))
    drift = float(np.abs(fresh.attention - trace.attention).max())
    assert drift <= FP32_TOL, f"stored trace drifts from a fresh one by {drift:.3g} (> {FP32_TOL})"
    assert run["prompt"] == PROMPT and run["n_tokens"] == trace.n_tokens

    checks = [(f"/api/runs/{rid}/summary", TraceSummaryOut, trace_view(trace, strict=False).to_dict()),
              (f"/api/runs/{rid}/convergence", ConvergenceView, convergence_view(trace).to_dict()),
              (f"/api/runs/{rid}/lens", LensView, lens_view(trace, -1, model.token_text).to_dict()),
              (f"/api/runs/{rid}/lens?position=-1", LensView, lens_view(trace, -1, model.token_text).to_dict()),
              (f"/api/runs/{rid}/top-k", TopKOut, {"position": trace.position,
                                                   "top_k": [s.__dict__ for s in trace.top_k]}),
              (f"/api/runs/{rid}", RunRecord, run)]
    for url, model, expected in checks:
        r = client.get(url)
        assert r.status_code == 200, (url, r.text)
        got = r.json()
        if model is RunRecord:  # reading the views marked the run as used
            assert got.pop("last_used") >= expected.pop("last_used")
            assert_matches(model, {**got, "last_used": 0.0})
        else:
            assert_matches(model, got)
        assert got == plain_json(expected), url


def test_maps_equal_the_trace_arrays_as_json_and_bytes(client, spec):
    rid = traced(client, spec, per_head=True)["run"]["run_id"]
    trace = stored(client, rid)
    n_layers, n_heads = trace.attention.shape[0], len(trace.heads)
    for layer in range(n_layers):
        summed = client.get(f"/api/runs/{rid}/maps/{layer}").json()
        assert_matches(MapOut, summed)
        assert summed["values"] == trace.attention[layer].astype(np.float32).tolist() and summed["head"] is None
        assert summed["vmax"] == pytest.approx(float(trace.attention.max()), rel=0, abs=0)
        raw = client.get(f"/api/runs/{rid}/maps/{layer}?format=binary")
        assert raw.headers["content-type"] == "application/octet-stream"
        assert raw.headers["x-shape"] == f"{trace.n_tokens},{trace.n_tokens}" and raw.headers["x-dtype"] == "float32"
        assert raw.content == np.ascontiguousarray(trace.attention[layer], dtype="<f4").tobytes()
        for head in range(n_heads):
            one = client.get(f"/api/runs/{rid}/maps/{layer}?head={head}").json()
            assert one["head"] == head and one["values"] == trace.attention_heads[layer, head].tolist()
        heads = client.get(f"/api/runs/{rid}/maps/{layer}/heads").json()
        assert_matches(HeadMapsOut, heads)
        assert heads["heads"] == trace.heads and heads["values"] == trace.attention_heads[layer].tolist()
        assert heads["vmax"] == float(trace.attention_heads[layer].max())
        packed = client.get(f"/api/runs/{rid}/maps/{layer}/heads?heads=1&heads=3&format=binary")
        assert packed.headers["x-shape"] == f"2,{trace.n_tokens},{trace.n_tokens}"
        assert packed.headers["x-heads"] == "1,3"
        assert packed.content == np.ascontiguousarray(trace.attention_heads[layer, [1, 3]], dtype="<f4").tobytes()
    negative = client.get(f"/api/runs/{rid}/maps/-1").json()
    assert negative["layer"] == n_layers - 1


def test_compare_equals_the_library(client, spec):
    a = traced(client, spec, "The capital of France is")["run"]["run_id"]
    b = traced(client, spec, "The capital of Peru is")["run"]["run_id"]
    for align in ("start", "end"):
        r = client.get(f"/api/compare?a={a}&b={b}&align={align}")
        assert r.status_code == 200, r.text
        expected = compare_view(stored(client, a), stored(client, b), a, b, align).to_dict()
        assert r.json() == plain_json(expected)
        assert_matches(CompareView, r.json())


def test_plan_options_reach_the_capture(client, spec):
    run = traced(client, spec, "Plan options here", layers=[0, -1], positions=[-1], top_k=3, threshold=0.2,
                 lens_all=True)["run"]
    trace = stored(client, run["run_id"])
    assert trace.layers == [0, 2] and len(trace.top_k) == 3
    assert run["plan"]["layers"] == [0, -1] and run["plan"]["threshold"] == 0.2 and run["plan"]["top_k"] == 3
    assert run["plan"]["lens_positions"] is None and trace.lens.top_ids.shape[1] == trace.n_tokens
    assert np.all(trace.attention[:, :-1] == 0), "rows other than the kept position hold nothing"


def test_the_trace_file_is_the_stored_file(client, spec):
    rid = traced(client, spec)["run"]["run_id"]
    r = client.get(f"/api/runs/{rid}/trace")
    assert r.status_code == 200 and r.content == state(client).store.trace_path(rid).read_bytes()


def test_runs_are_listed_and_deleted(client, spec):
    rid = traced(client, spec, "To be deleted")["run"]["run_id"]
    listed = client.get("/api/runs?limit=1000").json()
    assert_matches(RunsOut, listed)
    assert rid in [r["run_id"] for r in listed["runs"]]
    assert client.delete(f"/api/runs/{rid}").status_code == 204
    assert_user_error(client.get(f"/api/runs/{rid}"), 404, "no run")
    assert_user_error(client.get(f"/api/runs/{rid}/summary"), 404, "no run")
    assert_user_error(client.delete(f"/api/runs/{rid}"), 404, "no run")
    assert rid not in [r["run_id"] for r in client.get("/api/runs?limit=1000").json()["runs"]]


def test_bad_requests_are_one_line_user_errors(client, spec):
    rid = traced(client, spec)["run"]["run_id"]  # head-summed maps only
    post = lambda **body: client.post("/api/runs", json={"model": spec, "prompt": PROMPT, **body})  # noqa: E731
    assert_user_error(post(model="nope"), 404, "not served")
    assert_user_error(post(prompt=""), 422, "prompt")
    assert_user_error(post(prompt="x" * 100), 422, "context of 64")
    assert_user_error(post(prompt="   "), 422, "empty")
    assert_user_error(post(plan={"layers": [7]}), 422, "layer 7")
    assert_user_error(post(plan={"heads": [0]}), 422, "per-head")
    assert_user_error(post(plan={"top_k": 500}), 422, "top_k")
    assert_user_error(post(plan={"bogus": 1}), 422, "bogus")
    assert_user_error(post(position=99), 422, "99")
    assert_user_error(client.post("/api/runs", content=b"{not json", headers={"content-type": "application/json"}),
                      422)
    assert_user_error(client.get(f"/api/runs/{rid}/maps/0?head=0"), 422, "per-head")
    assert_user_error(client.get(f"/api/runs/{rid}/maps/0/heads"), 422, "per-head")
    assert_user_error(client.get(f"/api/runs/{rid}/maps/9"), 422, "layer 9")
    assert_user_error(client.get(f"/api/runs/{rid}/lens?position=999"), 422, "999")
    assert_user_error(client.get(f"/api/runs/{'0' * 32}/summary"), 404, "no run")
    assert_user_error(client.get("/api/runs/..%2F..%2Fetc%2Fpasswd/summary"), 404)
    assert_user_error(client.get(f"/api/compare?a={rid}&b=nope"), 404, "nope")


def test_a_capture_that_does_not_fit_is_413(client, spec, monkeypatch):
    import lmxray.capture.budget as budget

    monkeypatch.setattr(budget, "free_bytes", lambda device: (1024, None))
    assert_user_error(client.post("/api/runs", json={"model": spec, "prompt": "Too big for 1 KiB"}), 413, "memory")


def test_open_runs_never_answer_for_a_run_the_store_dropped(client, spec):
    rid = traced(client, spec, "Held open in memory")["run"]["run_id"]
    assert client.get(f"/api/runs/{rid}/summary").status_code == 200
    assert rid in state(client).open_runs._open
    state(client).store.delete(rid)  # as another process or the store's eviction would
    assert_user_error(client.get(f"/api/runs/{rid}/summary"), 404, "no run")
    assert rid not in state(client).open_runs._open


def test_open_runs_are_bounded(client, spec):
    from lmxray.server.open_runs import OpenRuns

    store = state(client).store
    held = OpenRuns(store, max_runs=2)
    ids = [traced(client, spec, f"Bounded {i}")["run"]["run_id"] for i in range(3)]
    for rid in ids:
        assert held.get(rid) is not None
    assert list(held._open) == ids[1:]
    small = OpenRuns(store, max_bytes=max(store.record(rid).bytes for rid in ids))  # room for one of them
    for rid in ids:
        small.get(rid)
    assert list(small._open) == ids[2:]


@pytest.mark.builtin
def test_the_builtin_model_is_served_by_default(tmp_path):
    prompt = "The capital of France is"
    with serving(tmp_path, []) as c:
        assert [m["spec"] for m in c.get("/api/models").json()["models"]] == ["smollm2"]
        run = c.post("/api/runs", json={"model": "smollm2", "prompt": prompt}).json()["run"]
        summary = c.get(f"/api/runs/{run['run_id']}/summary").json()
    fresh = trace_view(lmxray.load("smollm2").trace(prompt)).to_dict()
    assert summary["predicted_text"] == fresh["predicted_text"] == " Paris"
    drift = max(abs(a["prob"] - b["prob"]) for a, b in zip(summary["top_k"], fresh["top_k"]))
    assert drift <= FP32_TOL, f"top-k probabilities drift by {drift:.3g} from a fresh trace (> {FP32_TOL})"
