"""Jobs on a tiny model: each kind's result is the library's view, progress streams as SSE, and cancel stops a job
at its next step (a model call still queued on the device never runs)."""

from __future__ import annotations

import threading

import pytest
from server_helpers import (ForwardCounter, assert_close, assert_matches, assert_user_error, serving, sse_events,
                            state, wait_job)

import lmxray
from lmxray.flow import flow
from lmxray.flow.routes import routes
from lmxray.probes.generate import logit_trace
from lmxray.probes.heads import head_scores_vs_baseline, model_head_scores, probe_set, random_twins
from lmxray.server.schemas import JobEvent, JobOut, JobsOut
from lmxray.views import flow_view, head_scores_view, logits_view
from lmxray.views.routes import routes_view

FP32_TOL = 1e-5  # the job's model against a second load of the same weights, both fp32 on the CPU
PROMPT = "The cat sat on the mat"


@pytest.fixture(scope="module")
def client(tiny_dir, tmp_path_factory):
    with serving(tmp_path_factory.mktemp("runs"), [tiny_dir]) as c:
        yield c


@pytest.fixture(scope="module")
def spec(tiny_dir):
    return str(tiny_dir)


@pytest.fixture(scope="module")
def model(tiny_dir):
    return lmxray.load(str(tiny_dir))


def run_job(client, kind: str, **body) -> dict:
    r = client.post(f"/api/jobs/{kind}", json=body)
    assert r.status_code == 202, r.text
    assert_matches(JobOut, r.json())
    job = wait_job(client, r.json()["id"])
    assert_matches(JobOut, job)
    assert job["state"] == "done", job["error"]
    return job


def test_flow_job_is_the_library_flow_view(client, spec, model):
    job = run_job(client, "flow", model=spec, prompt=PROMPT, tokens=["a"], versus="b", groups="words")
    expected = flow_view(flow(model, PROMPT, tokens=("a",), versus="b", groups="words")).to_dict()
    assert_close(job["result"], expected, FP32_TOL, "flow")
    assert job["result"]["contrast"]["b"]["text"] == "b" and job["progress"] == 1.0


def test_routes_job_is_the_library_routes_view(client, spec, model):
    job = run_job(client, "routes", model=spec, prompt=PROMPT, threshold=0.1, position=-2)
    assert_close(job["result"], routes_view(routes(model, PROMPT, threshold=0.1, position=-2)).to_dict(), FP32_TOL,
                 "routes")


def test_logits_job_is_the_library_logits_view(client, spec, model):
    job = run_job(client, "logits", model=spec, prompt="Hello", steps=4, top_k=3, temperature=0.7, seed=3)
    expected = logits_view(logit_trace(model, "Hello", steps=4, top_k=3, temperature=0.7, seed=3)).to_dict()
    assert_close(job["result"], expected, FP32_TOL, "logits")


def test_heads_jobs_are_the_library_head_scores(client, spec, model):
    probes = probe_set(model, n_repeats=1)
    alone = run_job(client, "heads", model=spec, baseline="none", repeats=1, top=3)
    expected = head_scores_view(model_head_scores(model, probes), top=3, probes=probes).to_dict()
    assert_close(alone["result"], expected, FP32_TOL, "heads")
    twinned = run_job(client, "heads", model=spec, baseline="random", baseline_seeds=2, repeats=1, layers=[0, 2])
    scores, _ = head_scores_vs_baseline(model, random_twins(spec, [1, 2]), "random init (2 seeds)", probes, [0, 2])
    assert_close(twinned["result"], head_scores_view(scores, probes=probes).to_dict(), FP32_TOL, "heads vs twins")
    assert twinned["result"]["layers"] == [0, 2]


def test_heads_job_of_a_served_random_model_is_scored_against_its_base_specs_twins(spec, tmp_path):
    served = f"random:{spec}"
    model = lmxray.load(served)  # the server loads random weights with seed 0
    probes = probe_set(model, n_repeats=1)
    with serving(tmp_path, [served]) as random_client:
        job = run_job(random_client, "heads", model=served, baseline="random", baseline_seeds=2, repeats=1, layers=[1])
    scores, _ = head_scores_vs_baseline(model, random_twins(spec, [1, 2]), "random init (2 seeds)", probes, [1])
    assert_close(job["result"], head_scores_view(scores, probes=probes).to_dict(), FP32_TOL, "random model vs twins")


def test_progress_streams_as_server_sent_events(client, spec):
    job_id = client.post("/api/jobs/heads", json={"model": spec, "baseline_seeds": 2, "repeats": 1}).json()["id"]
    with client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(stream.iter_lines()))
    data = [e["data"] for e in events]
    for item in data:
        assert_matches(JobEvent, item)
    assert [d["seq"] for d in data] == list(range(len(data))) and [e["id"] for e in events] == \
        [str(d["seq"]) for d in data]
    assert data[0]["state"] == "queued" and data[-1]["state"] == "done" and events[-1]["event"] == "done"
    progress = [d["progress"] for d in data]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert any("twin 2 of 2" in d["message"] for d in data)
    resumed = client.get(f"/api/jobs/{job_id}/events", headers={"Last-Event-ID": "2"})
    resumed = list(sse_events(resumed.iter_lines()))
    assert [e["data"]["seq"] for e in resumed] == list(range(3, len(data)))


def test_cancel_while_queued_on_the_device_skips_the_model_call(client, spec):
    loaded = state(client).registry.get(spec)
    hold, counter = threading.Event(), ForwardCounter(loaded.model.hf)
    try:
        blocker = loaded.worker.submit(hold.wait)  # the device is busy until the test lets go
        job_id = client.post("/api/jobs/flow", json={"model": spec, "prompt": PROMPT}).json()["id"]
        while "decomposing" not in client.get(f"/api/jobs/{job_id}").json()["message"]:
            pass  # the job is waiting on the device
        cancelled = client.delete(f"/api/jobs/{job_id}")
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "running"
        hold.set()
        blocker.result()
        job = wait_job(client, job_id)
    finally:
        hold.set()
        counter.remove()
    assert job["state"] == "cancelled" and job["result"] is None
    assert counter.calls == 0, "the cancelled job's forward pass ran"
    events = list(sse_events(client.get(f"/api/jobs/{job_id}/events").iter_lines()))
    assert events[-1]["event"] == "cancelled"


def test_cancel_between_steps_stops_a_long_job(client, spec):
    job_id = client.post("/api/jobs/heads", json={"model": spec, "baseline_seeds": 16, "repeats": 1}).json()["id"]
    with client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        for event in sse_events(stream.iter_lines()):
            if "twin 1 of 16" in event["data"]["message"]:
                client.delete(f"/api/jobs/{job_id}")
    job = wait_job(client, job_id)
    assert job["state"] == "cancelled" and job["result"] is None and job["progress"] < 1.0, job["message"]
    again = client.delete(f"/api/jobs/{job_id}").json()
    assert again["state"] == "cancelled", "cancelling a finished job changes nothing"


def test_job_errors_and_bad_requests(client, spec):
    failed = wait_job(client, client.post("/api/jobs/flow", json={"model": spec, "prompt": PROMPT, "tokens": ["a"],
                                                                   "versus": "a"}).json()["id"])
    assert failed["state"] == "failed" and "same token" in failed["error"]["error"] and failed["error"]["fix"]
    assert_user_error(client.post("/api/jobs/flow", json={"model": "nope", "prompt": "x"}), 404, "not served")
    assert_user_error(client.post("/api/jobs/routes", json={"model": spec, "prompt": "x", "threshold": 0}), 422,
                      "threshold")
    assert_user_error(client.post("/api/jobs/logits", json={"model": spec, "prompt": "x", "steps": 0}), 422, "steps")
    assert_user_error(client.post("/api/jobs/sweep", json={"model": spec, "folder": "../out"}), 422, "folder")
    assert_user_error(client.get("/api/jobs/nope"), 404, "no job")
    assert_user_error(client.get("/api/jobs/nope/events"), 404, "no job")
    assert_user_error(client.delete("/api/jobs/nope"), 404, "no job")
    listed = client.get("/api/jobs").json()
    assert_matches(JobsOut, listed)
    assert failed["id"] in [j["id"] for j in listed["jobs"]] and all(j["result"] is None for j in listed["jobs"])
