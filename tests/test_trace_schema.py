"""The trace schema is defined once: the field tables against the dataclasses, schema.json, a real capture and
memory sizes; and trace/ imports nothing above it."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from lmxray.capture.plan import CapturePlan
from lmxray.trace import fields, meta, schema
from lmxray.trace.types import ComponentData, LogitLens, Trace



def test_dataclass_fields_are_the_tables_fields():
    from_meta = {m.attr for m in meta.META if m.attr}
    from_arrays = {f.name.split(".")[0] for f in fields.ARRAYS}
    assert {f.name for f in dataclasses.fields(Trace)} == from_meta | from_arrays
    assert {f.name for f in dataclasses.fields(ComponentData)} == {
        f.name.split(".")[2] for f in fields.ARRAYS if f.name.startswith("components.")}
    assert {f.name for f in dataclasses.fields(LogitLens)} == {
        f.name.split(".")[1] for f in fields.ARRAYS if f.name.startswith("lens.")}
    assert {n.split(".")[1] for n in fields.BY_NAME if n.startswith("components.")} == set(fields.COMPONENTS)


def test_every_axis_and_storage_kind_is_documented():
    for f in fields.ARRAYS:
        assert set(f.axes) <= set(fields.AXES), f.name
        assert f.jsonl in fields.JSONL_KINDS, f.name
        assert np.dtype(f.dtype).itemsize == f.itemsize


def test_schema_json_is_in_step_with_the_tables():
    assert schema.schema_drift() == []


def test_schema_drift_is_caught():
    drifted = copy.deepcopy(schema.load_schema())
    drifted["$defs"]["strict_meta"]["required"].remove("layers")
    drifted["$defs"]["strict_meta"]["properties"]["prompt"] = {"type": "integer"}
    drifted["$defs"]["component"]["enum"].append("gate")
    drifted["$defs"]["model"]["properties"].pop("dtype")
    problems = schema.schema_drift(drifted)
    assert len(problems) == 4, problems
    assert any("strict_meta.properties.prompt" in p for p in problems)
    assert any("model.properties.dtype" in p for p in problems)


def test_a_captured_trace_conforms_to_the_table():
    from lmxray.models.loader import from_hf
    from tiny_models import BosTokenizer, tiny_model

    model = from_hf(tiny_model("llama"), BosTokenizer(), "tiny-llama")
    trace = model.trace("abcab cab", plan=CapturePlan(per_head=True, heads=(1, 3), n_values=None, lens_positions=None))
    shapes = fields.array_shapes(trace)
    assert set(shapes) == set(fields.BY_NAME), set(fields.BY_NAME) - set(shapes)
    assert fields.trace_problem(trace) is None
    trace.entropy = trace.entropy[:, :2]
    assert "entropy" in fields.trace_problem(trace)


def test_trace_problem_names_dtype_and_shape():
    trace = _tiny_trace()
    assert fields.trace_problem(trace) is None
    trace.attention = trace.attention.astype(np.float64)
    assert fields.trace_problem(trace) == "attention has dtype float64, expected float32"
    trace.attention = np.zeros((2, 3, 4), np.float32)
    assert "axis 'q_pos' is 3, expected 4" in fields.trace_problem(trace)


def test_field_bytes_from_axis_sizes():
    sizes = {"layer": 30, "head": 9, "q_pos": 8, "k_pos": 512}
    got = fields.field_bytes(sizes, ["attention", "attention_heads"])
    assert got == {"attention": 30 * 8 * 512 * 4, "attention_heads": 30 * 9 * 8 * 512 * 4}
    everything = fields.field_bytes({a: 2 for a in fields.AXES})
    assert set(everything) == set(fields.BY_NAME)
    assert everything["lens.top_ids"] == 8 * 8 and everything["lens.target_rank"] == 4 * 4
    assert "entropy" not in fields.field_bytes(sizes)  # model_head unsized: left out
    with pytest.raises(KeyError, match="model_head"):
        fields.field_bytes(sizes, ["entropy"])


def _tiny_trace() -> Trace:
    from lmxray.trace.types import ModelInfo, TokenScore

    return Trace(model=ModelInfo("m", "in-memory", None, "llama", 2, 2, 1, 4, 10, "float32"), prompt="ab cd",
                 token_ids=[1, 2, 3, 4], tokens=["a", "b", " c", "d"], position=3, top_k=[TokenScore(5, "e", 0.5)],
                 layers=[0, 1], attention=np.zeros((2, 4, 4), np.float32),
                 entropy=np.full((2, 2, 4), math.nan, np.float32))


def test_jupyter_display_is_attached_by_the_package_root():
    import lmxray
    from lmxray.display import trace_html

    assert Trace._repr_html_ is trace_html and lmxray.Trace is Trace


def test_docs_list_every_field():
    doc = (Path(__file__).parents[1] / "docs" / "trace-format.md").read_text(encoding="utf-8")
    for f in fields.ARRAYS:
        name = f.name if not f.name.startswith("components.") else "components.<c>." + f.name.split(".")[2]
        assert f"`{name}`" in doc, f"docs/trace-format.md does not list {name}"
        assert all(a in doc for a in f.axes), f"docs/trace-format.md does not name the axes of {f.name}"
