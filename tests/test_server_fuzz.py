"""Schema-driven fuzz of the API (schemathesis strategies from openapi.json, run in-process against the ASGI app
on a tiny model): valid and invalid requests for every operation never get a 5xx, and every error has the
{error, fix} shape. Bounded: a fixed number of examples per operation and mode, derandomized, within a minute."""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from lmxray.capture.plan import CapturePlan
from lmxray.server import ServeConfig, create_app

EXAMPLES = 10  # per operation and generation mode
BUDGET_S = 60.0


@pytest.fixture(scope="module")
def fuzzed_app(tiny_dir, tmp_path_factory):
    # schemathesis calls the app as Host "testserver"; the guard admits it as an extra name, as behind a proxy
    app = create_app(ServeConfig(runs=tmp_path_factory.mktemp("runs"), models=(str(tiny_dir),),
                                 allowed_hosts=("testserver",), max_upload_mb=1))
    yield app
    app.state.lmxray.close()


def test_no_request_gets_a_server_error(fuzzed_app):
    spec = fuzzed_app.state.lmxray.config.models[0]
    loaded = fuzzed_app.state.lmxray.registry.get(spec)
    run_id = fuzzed_app.state.lmxray.store.put(
        "0" * 64, loaded.model.trace("A run the fuzz can read", plan=CapturePlan(per_head=True)),
        model_id=loaded.model_id, model_name="tiny", prompt="A run the fuzz can read", plan=CapturePlan()).run_id
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25, "the fuzz sees fewer operations than the API has"
    seen: dict[str, set[int]] = {}
    start = time.monotonic()
    for operation in operations:
        for mode in schemathesis.GenerationMode:
            path = {"job_id": "not-a-job"} if operation.path == "/api/jobs/{job_id}/events" else None

            @given(case=operation.as_strategy(mode, path_parameters=path))
            @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.generate], derandomize=True,
                      suppress_health_check=list(HealthCheck), database=None)
            def call(case):
                if mode is schemathesis.GenerationMode.POSITIVE:  # valid requests name what exists, so they go deep
                    if isinstance(case.body, dict) and "model" in case.body:
                        case.body["model"] = spec
                    if "run_id" in (case.path_parameters or {}) and case.method == "GET":
                        case.path_parameters["run_id"] = run_id
                response = case.call()
                where = f"{case.method} {case.formatted_path} ({mode.value})"
                assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
                if response.status_code >= 400:
                    assert set(response.json()) == {"error", "fix"}, f"{where}: {response.text[:300]}"
                seen.setdefault(operation.label, set()).add(response.status_code)
                if response.status_code == 202:  # a started job: the fuzz is about requests, not long work
                    fuzzed_app.state.lmxray.jobs.get(response.json()["id"]).cancel()

            try:
                call()
            except Unsatisfiable:
                if mode is not schemathesis.GenerationMode.NEGATIVE:
                    raise  # an operation with no parameters has no invalid request to make; any other must have
    elapsed = time.monotonic() - start
    assert elapsed < BUDGET_S, f"the fuzz took {elapsed:.0f} s (budget {BUDGET_S:.0f} s)"
    answered = {label for label, codes in seen.items() if any(c < 400 for c in codes)}
    assert len(answered) >= len(operations) // 2, f"too few operations ever succeeded: {sorted(answered)}"
