"""Job results on a tiny model against the published API document: each kind's result is exactly what
openapi.json's schema of that kind (FlowJobOut .. SweepJobOut, picked by ``kind``) describes, so a view whose
to_dict() drifts from its schema fails here (as do the pydantic models the document is generated from)."""

from __future__ import annotations

import copy
import json

import pydantic
import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from server_helpers import assert_matches, serving, wait_job

from lmxray.server.openapi import SPEC_PATH
from lmxray.server.schemas import FlowJobOut, HeadsJobOut, JobOut, LogitsJobOut, RoutesJobOut, SweepJobOut

PROMPT = "The cat sat on the mat"
VARIANTS = {"flow": FlowJobOut, "routes": RoutesJobOut, "logits": LogitsJobOut, "heads": HeadsJobOut,
            "sweep": SweepJobOut}
REQUESTS = {  # each kind once, small; heads twice: its rows carry baseline and z only against twins
    "flow": ("flow", {"prompt": PROMPT, "tokens": ["a"], "versus": "b", "groups": "words"}),
    "routes": ("routes", {"prompt": PROMPT, "threshold": 0.1}),
    "logits": ("logits", {"prompt": "Hello", "steps": 3, "top_k": 3, "temperature": 0.7, "seed": 1}),
    "heads alone": ("heads", {"baseline": "none", "repeats": 1, "top": 2}),
    "heads vs twins": ("heads", {"baseline": "random", "baseline_seeds": 1, "repeats": 1, "layers": [0]}),
    "sweep": ("sweep", {"folder": "sw", "limit": 2, "batch_size": 2}),
}


@pytest.fixture(scope="module")
def document() -> dict:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def validator(document: dict, component: str) -> Draft202012Validator:
    """A JSON-schema validator of ``component`` in the checked-in openapi.json, its $refs resolved in the file."""
    registry = Registry().with_resource("urn:openapi", DRAFT202012.create_resource(document))
    return Draft202012Validator({"$ref": f"urn:openapi#/components/schemas/{component}"}, registry=registry)


@pytest.fixture(scope="module")
def jobs(tiny_dir, tmp_path_factory) -> dict[str, dict]:
    """Every request of REQUESTS run to its end on a tiny model: the job JSON GET /api/jobs/{id} answers."""
    with serving(tmp_path_factory.mktemp("runs"), [tiny_dir]) as client:
        done = {}
        for name, (kind, body) in REQUESTS.items():
            r = client.post(f"/api/jobs/{kind}", json={"model": str(tiny_dir), **body})
            assert r.status_code == 202, r.text
            done[name] = wait_job(client, r.json()["id"])
            assert done[name]["state"] == "done", done[name]["error"]
        return done


@pytest.mark.parametrize("name", list(REQUESTS))
def test_each_result_is_what_the_document_says_its_kind_returns(document, jobs, name):
    job = jobs[name]
    component = VARIANTS[job["kind"]].__name__
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator(document, component).iter_errors(job)]
    assert not errors, f"{name} drifts from {component}: " + "; ".join(errors[:5])
    validator(document, "JobOut").validate(job)  # the discriminated union picks that one variant
    assert_matches(JobOut, job)
    assert_matches(VARIANTS[job["kind"]], job)


def test_the_post_of_each_kind_declares_that_kinds_variant(document):
    for kind, variant in VARIANTS.items():
        answer = document["paths"][f"/api/jobs/{kind}"]["post"]["responses"]["202"]
        assert answer["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{variant.__name__}"}
    mapping = document["components"]["schemas"]["JobOut"]["discriminator"]["mapping"]
    assert mapping == {k: f"#/components/schemas/{v.__name__}" for k, v in VARIANTS.items()}


@pytest.mark.parametrize("change", ["extra key in a nested row", "missing field", "wrong type", "another kind"])
def test_a_drifted_result_is_refused(document, jobs, change):
    job = copy.deepcopy(jobs["flow"])
    if change == "extra key in a nested row":
        job["result"]["layers"][0]["norm"] = 1.0
    elif change == "missing field":
        del job["result"]["attribution"][0]["bias"]
    elif change == "wrong type":
        job["result"]["sink"]["index"] = "0"
    else:
        job["kind"] = "routes"
    with pytest.raises(ValidationError):
        validator(document, "JobOut").validate(job)
    with pytest.raises((AssertionError, pydantic.ValidationError)):  # refused, or changed on the way through
        assert_matches(JobOut, job)
