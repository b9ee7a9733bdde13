"""openapi.json is generated from the code and checked in: a test fails when the two drift apart."""

from __future__ import annotations

import json

from lmxray.server.openapi import REGENERATE, SPEC_PATH, generate, render


def test_checked_in_openapi_matches_the_code():
    text = render(generate())
    assert SPEC_PATH.is_file(), f"{SPEC_PATH} is missing; run: {REGENERATE}"
    assert SPEC_PATH.read_text(encoding="utf-8") == text, f"{SPEC_PATH.name} drifted from the code; run: {REGENERATE}"


def test_the_spec_names_every_operation_and_the_error_shape():
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    paths = spec["paths"]
    for path in ("/api/runs", "/api/runs/{run_id}/maps/{layer}", "/api/jobs/{job_id}/events", "/api/uploads",
                 "/api/experiments/{name}/tables/{table}/query", "/api/compare", "/api/models"):
        assert path in paths, path
    assert spec["components"]["schemas"]["ErrorOut"]["required"] == ["error", "fix"]
    events = paths["/api/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in events
    binary = paths["/api/runs/{run_id}/maps/{layer}"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "application/octet-stream"} <= set(binary)
    assert not any("/{path}" in p for p in paths), "the /api catch-all is not part of the API"
