"""The Python API's user errors: every bad call raises LmxrayError (a ValueError) naming the parameter, never a bare
TypeError/IndexError/AttributeError, and builds nothing."""

from __future__ import annotations

import pytest

import lmxray
from lmxray import CapturePlan, LmxrayError
from lmxray.models.loader import from_hf
from lmxray.probes.generate import logit_trace
from tiny_models import BosTokenizer, tiny_model


@pytest.fixture(scope="module")
def model():
    return from_hf(tiny_model("llama"), BosTokenizer(), "llama")


PLAN_CASES = [
    (dict(layers=()), "layers"), (dict(layers=(1.0,)), "layers"), (dict(heads=("a",)), "heads"),
    (dict(positions=5), "positions"), (dict(chunk_bytes=0), "chunk_bytes"), (dict(chunk_bytes=-1), "chunk_bytes"),
    (dict(top_k=0), "top_k"), (dict(top_k=2.5), "top_k"), (dict(threshold=2.0), "threshold"),
    (dict(threshold="x"), "threshold"), (dict(n_values=-1), "n_values"), (dict(per_head=1), "per_head"),
    (dict(components="residual"), "components"), (dict(components=("nope",)), "unknown component"),
]


@pytest.mark.parametrize("kwargs, word", PLAN_CASES, ids=[str(k) for k, _ in PLAN_CASES])
def test_bad_capture_plans(kwargs, word):
    with pytest.raises(LmxrayError, match=word):
        CapturePlan(**kwargs)


@pytest.mark.parametrize("data, word", [({"layers": "x"}, "layers"), ({"layers": [0, "a"]}, "layers"),
                                        ({"nope": 1}, "unknown capture plan key")])
def test_bad_plan_dicts(data, word):
    with pytest.raises(LmxrayError, match=word):
        CapturePlan.from_dict(data)


def test_lists_read_as_tuples():
    assert CapturePlan(layers=[0, -1]).layers == (0, -1)


CALLS = {
    "trace(None)": (lambda m: m.trace(None), "prompts must be"),
    "trace(b'x')": (lambda m: m.trace(b"x"), "prompts must be"),
    "trace('')": (lambda m: m.trace(""), "the prompt is empty"),
    "trace([])": (lambda m: m.trace([]), "no prompts"),
    "trace([None])": (lambda m: m.trace([None]), "text or a list of token ids"),
    "trace(ids beyond the vocabulary)": (lambda m: m.trace([1, 10**6]), "outside the vocabulary"),
    "position=1.5": (lambda m: m.trace("hi", position=1.5), "position must be an integer"),
    "position=99": (lambda m: m.trace("hi", position=99), "position 99 is out of range"),
    "top_k beyond vocab": (lambda m: m.trace("hi", plan=CapturePlan(top_k=10**6)), "top_k 1000000"),
    "expect not a dict": (lambda m: m.trace("hi", expect=[1]), "expect"),
    "layers out of range": (lambda m: m.trace("hi", plan=CapturePlan(layers=(7,))), "layer 7 is out of range"),
    "logit_trace steps=0": (lambda m: logit_trace(m, "hi", steps=0), "steps must be"),
    "logit_trace temperature=-1": (lambda m: logit_trace(m, "hi", temperature=-1.0), "temperature must be"),
    "load(None)": (lambda m: lmxray.load(None), "spec must name a model"),
    "load(init=?)": (lambda m: lmxray.load("x", init="trained"), "unknown init"),
    "load(device=mps)": (lambda m: lmxray.load("x", device="mps"), "unknown device"),
    "read_trace(123)": (lambda m: lmxray.read_trace(123), "path must name a trace file"),
    "read_trace('')": (lambda m: lmxray.read_trace(""), "path must name a trace file"),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_bad_api_calls_are_one_line_value_errors(model, name):
    call, word = CALLS[name]
    with pytest.raises(ValueError, match=word) as err:
        call(model)
    assert isinstance(err.value, LmxrayError) and "\n" not in str(err.value)


def test_the_cli_shows_flags_where_the_library_names_parameters():
    from lmxray.cli.flags import cli_message

    error = LmxrayError("top_k 9 is larger than the vocabulary", "pass top_k 8 or less", params=("top_k",))
    assert cli_message(error) == "top_k 9 is larger than the vocabulary — pass top_k 8 or less".replace("top_k", "--top-k")
    assert cli_message(LmxrayError("a top_kx stays")) == "a top_kx stays"
