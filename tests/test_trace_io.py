"""JSONL trace format v1: write -> read round trip, thresholds, atomic writes, reader errors, legacy files."""

from __future__ import annotations

import copy
import importlib.resources
import json
import os
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from lmxray.capture.plan import CapturePlan
from lmxray.errors import LmxrayError
from lmxray.trace import reader as reader_mod
from lmxray.trace import writer as writer_mod
from lmxray.trace.reader import iter_records, read_trace
from lmxray.trace.types import (
    COMPONENTS, PER_HEAD_COMPONENTS, SCHEMA, ComponentData, LogitLens, ModelInfo, TokenScore, Trace,
)
from lmxray.trace.writer import trace_records, write_trace

ROUND_TOL = 1e-6  # relative: floats are written with 7 significant digits, read back as float32
T, N_HEADS, N_KV, N_VALUES = 6, 4, 2, 3
LAYERS = [0, 2]  # a subset of the model's 3 layers, to exercise the layer axis mapping
HEADS = [0, 2]  # per-head maps kept for these heads only


def assert_close(what: str, got, want) -> None:
    """Equal within ROUND_TOL (relative), NaN where the other is NaN; the message prints the drift."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert np.array_equal(np.isnan(got), np.isnan(want)), f"{what}: NaN at different places"
    g, w = np.nan_to_num(got), np.nan_to_num(want)
    drift = np.abs(g - w)
    bound = ROUND_TOL * np.abs(w) + 1e-12
    worst = np.unravel_index(np.argmax(drift - bound), drift.shape) if drift.size else ()
    assert np.all(drift <= bound), (
        f"{what}: drift {drift[worst]:.3g} at index {worst} (got {g[worst]!r}, want {w[worst]!r}) "
        f"exceeds ROUND_TOL={ROUND_TOL} relative"
    )


def make_trace(seed: int = 0) -> Trace:
    """A small hand-built trace with every optional part filled."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(len(LAYERS), N_HEADS, T, T))
    scores[..., np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] = -np.inf  # causal
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs = (probs / probs.sum(-1, keepdims=True)).astype(np.float32)  # [layer, head, q, k]
    components = {}
    for name in COMPONENTS:
        n_layers = 1 if name == "input_embedding" else len(LAYERS)
        shape = (n_layers, T)
        if name in PER_HEAD_COMPONENTS:
            shape += (N_HEADS if name == "query" else N_KV,)
        components[name] = ComponentData(
            norm=rng.uniform(0.5, 20, size=shape).astype(np.float32),
            values=rng.normal(scale=3, size=shape + (N_VALUES,)).astype(np.float32),
        )
    top_ids = rng.integers(0, 50, size=(len(LAYERS), T, 3))
    top_probs = np.sort(rng.uniform(0, 0.3, size=(len(LAYERS), T, 3)), axis=-1)[..., ::-1].astype(np.float32)
    attention = probs.sum(1)
    position = T - 1
    return Trace(
        model=ModelInfo("tiny", "in-memory", None, "llama", 3, N_HEADS, N_KV, 8, 5000, "float32"),
        prompt="The capital of France is",
        token_ids=[1, 504, 3575, 282, 4649, 314],
        tokens=["<s>", "The", " capital", " of", " France", " is"],
        position=position,
        top_k=[TokenScore(7, " Paris", 0.7731), TokenScore(9, " a", 0.1), TokenScore(3, " the", 0.05)],
        expected_attention={5: [0, 4]},
        capture=CapturePlan(layers=tuple(LAYERS), per_head=True, heads=tuple(HEADS), n_values=N_VALUES).to_dict(),
        layers=list(LAYERS),
        heads=list(HEADS),
        attention=attention,
        attention_heads=probs[:, HEADS],
        entropy=rng.uniform(0, 2, size=(len(LAYERS), N_HEADS, T)).astype(np.float32),
        components=components,
        lens=LogitLens(top_ids=top_ids, top_probs=top_probs, target_prob=top_probs[..., 0].copy()),
        attention_mass=attention[:, position, :].sum(0),
        version="0.1.0",
        created="2026-01-01T00:00:00+00:00",
    )


def lines(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


# -- round trip ------------------------------------------------------------------------------------


def test_round_trip_preserves_every_field(tmp_path):
    trace = make_trace()
    path = tmp_path / "t.jsonl"
    write_trace(trace, path, threshold=0.0)  # 0: every non-zero weight is written
    back = read_trace(path)
    assert back.model == trace.model
    for field in ("prompt", "token_ids", "tokens", "position", "expected_attention", "capture", "layers",
                  "heads", "version", "created"):
        assert getattr(back, field) == getattr(trace, field), field
    assert [(s.token_id, s.text) for s in back.top_k] == [(s.token_id, s.text) for s in trace.top_k]
    assert_close("top_k probs", [s.prob for s in back.top_k], [s.prob for s in trace.top_k])
    assert_close("attention", back.attention, trace.attention)
    assert_close("attention_heads", back.attention_heads, trace.attention_heads)
    assert_close("attention_mass", back.attention_mass, trace.attention_mass)
    assert_close("entropy", back.entropy, trace.entropy)
    assert set(back.components) == set(trace.components)
    for name, data in trace.components.items():
        assert_close(f"{name}.norm", back.components[name].norm, data.norm)
        assert_close(f"{name}.values", back.components[name].values, data.values)
    np.testing.assert_array_equal(back.lens.top_ids, trace.lens.top_ids)
    assert_close("lens.top_probs", back.lens.top_probs, trace.lens.top_probs)
    assert_close("lens.target_prob", back.lens.target_prob, trace.lens.target_prob)
    assert back.predicted_token == 7 and back.predicted_text == " Paris"


def test_file_layout_and_confidence_node(tmp_path):
    trace = make_trace()
    path = tmp_path / "t.jsonl"
    trace.save(path)
    recs = lines(path)
    assert recs[0]["record"] == "meta" and recs[0]["schema"] == SCHEMA
    kinds = [r["record"] for r in recs]
    assert kinds.count("meta") == 1 and kinds.index("edge") > max(i for i, k in enumerate(kinds) if k == "node")
    conf = [r for r in recs if r.get("component") == "confidence"]
    assert len(conf) == 1
    assert conf[0]["layer"] == trace.model.n_layers - 1 and conf[0]["position"] == trace.position
    assert conf[0]["norm"] == pytest.approx(trace.confidence) and conf[0]["token_id"] == 7
    emb = [r for r in recs if r.get("component") == "input_embedding"]
    assert len(emb) == T and all(r["layer"] == 0 for r in emb)
    assert {r["layer"] for r in recs if r.get("component") == "residual"} == set(LAYERS)


def test_nan_is_never_written(tmp_path):
    trace = make_trace()
    trace.components["residual"].values[0, 1, 0] = np.nan
    trace.components["mlp_output"].norm[1, 2] = np.nan  # not captured there: no node
    trace.attention_mass[3] = np.inf
    trace.attention[0, 5, 1], trace.attention[1, 5, 2] = np.nan, np.inf  # never written as edges
    path = tmp_path / "t.jsonl"
    write_trace(trace, path)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = read_trace(path)
    assert np.isnan(back.components["residual"].values[0, 1, 0])
    assert np.isnan(back.components["mlp_output"].norm[1, 2])
    assert np.isnan(back.attention_mass[3])
    assert back.attention[0, 5, 1] == 0 and back.attention[1, 5, 2] == 0


# -- thresholds and heads ---------------------------------------------------------------------------


def test_threshold_respected(tmp_path):
    trace = make_trace()
    path = tmp_path / "t.jsonl"
    write_trace(trace, path, threshold=0.2)
    recs = lines(path)
    assert recs[0]["threshold"] == 0.2
    summed = [r for r in recs if r["record"] == "edge" and "head_id" not in r]
    assert summed and min(r["weight"] for r in summed) >= 0.2
    assert len(summed) == int((trace.attention >= 0.2).sum())
    back = read_trace(path)
    assert_close("thresholded attention", back.attention, np.where(trace.attention >= 0.2, trace.attention, 0))


def test_default_threshold_comes_from_capture(tmp_path):
    trace = make_trace()
    trace.capture["threshold"] = 0.3
    path = tmp_path / "t.jsonl"
    write_trace(trace, path)
    recs = lines(path)
    assert recs[0]["threshold"] == 0.3
    assert min(r["weight"] for r in recs if r["record"] == "edge") >= 0.3
    del trace.capture["threshold"]
    write_trace(trace, path)
    assert lines(path)[0]["threshold"] == 0.01


def test_per_head_edges_carry_head_id(tmp_path):
    trace = make_trace()
    path = tmp_path / "t.jsonl"
    write_trace(trace, path, threshold=0.05)
    per_head = [r for r in lines(path) if r["record"] == "edge" and "head_id" in r]
    assert {r["head_id"] for r in per_head} == set(HEADS)
    assert len(per_head) == int((trace.attention_heads >= 0.05).sum())
    for r in per_head[:50]:
        li, hi = LAYERS.index(r["src_layer"]), HEADS.index(r["head_id"])
        want = trace.attention_heads[li, hi, r["src_position"], r["dst_position"]]
        assert r["weight"] == pytest.approx(want, rel=ROUND_TOL), f"edge {r} drifts from {want}"
        assert r["src_token_id"] == trace.token_ids[r["src_position"]]


def test_zero_rows_of_uncaptured_positions_are_skipped(tmp_path):
    trace = make_trace()
    trace.attention[:, :4] = 0  # only positions 4 and 5 captured
    trace.attention_heads = None
    trace.heads = []
    trace.capture.update(per_head=False, positions=[-2, -1])
    path = tmp_path / "t.jsonl"
    write_trace(trace, path, threshold=0.0)
    assert {r["src_position"] for r in lines(path) if r["record"] == "edge"} == {4, 5}
    back = read_trace(path)
    assert back.attention_heads is None and back.heads == []
    assert_close("attention", back.attention, trace.attention)


# -- atomic writes -------------------------------------------------------------------------------


@pytest.mark.parametrize("existing", [False, True])
def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch, existing):
    path = tmp_path / "t.jsonl"
    if existing:
        path.write_text("old content\n")
    real_dumps, calls = json.dumps, []

    def failing_dumps(*args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("simulated failure mid-write")
        return real_dumps(*args, **kwargs)

    monkeypatch.setattr(writer_mod.json, "dumps", failing_dumps)
    with pytest.raises(RuntimeError, match="simulated"):
        write_trace(make_trace(), path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["t.jsonl"] if existing else []), "temp file left behind"
    if existing:
        assert path.read_text() == "old content\n"


def test_unwritable_path_raises_before_writing(tmp_path):
    for target in (tmp_path / "missing" / "t.jsonl", tmp_path / "afile" / "t.jsonl", tmp_path):
        (tmp_path / "afile").write_text("x")
        with pytest.raises(LmxrayError, match="cannot write") as err:
            write_trace(make_trace(), target)
        assert "output path" in str(err.value) and "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_directory_raises(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(LmxrayError, match="not writable"):
            write_trace(make_trace(), locked / "t.jsonl")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


# -- schema ------------------------------------------------------------------------------------------


def test_schema_is_package_data_and_valid():
    resource = importlib.resources.files("lmxray.trace").joinpath("schema.json")
    assert resource.is_file()
    schema = json.loads(resource.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$defs"]["strict_meta"]["properties"]["schema"]["const"] == SCHEMA


def test_every_written_line_validates_against_schema(tmp_path):
    schema = json.loads(importlib.resources.files("lmxray.trace").joinpath("schema.json").read_text())
    line_validator = jsonschema.Draft202012Validator(schema)
    strict = {k: jsonschema.Draft202012Validator({**schema, "oneOf": [{"$ref": f"#/$defs/strict_{k}"}]})
              for k in ("meta", "node", "edge")}
    path = tmp_path / "t.jsonl"
    write_trace(make_trace(), path, threshold=0.0)
    recs = lines(path)
    for i, rec in enumerate(recs, 1):
        line_validator.validate(rec)
        errors = list(strict[rec["record"]].iter_errors(rec))
        assert not errors, f"line {i}: {errors[0].message}"
    assert {r["record"] for r in recs} == {"meta", "node", "edge"}


def _mutations(rec: dict):
    """Variants of a valid record, most of them invalid, to compare the fast path with the schema."""
    for key in list(rec):
        if key == "record":
            continue
        yield {k: v for k, v in rec.items() if k != key}
        for bad in (-1, "x", None, True, 1.5, [], {}):
            yield {**rec, key: bad}
    yield {**rec, "extra": 1}
    if "top_k" in rec and rec["top_k"]:
        yield {**rec, "top_k": [{**rec["top_k"][0], "prob": 2.0}]}
        yield {**rec, "top_k": [{"token_id": 1}]}
    if "values" in rec:
        yield {**rec, "values": ["a"]}
        yield {**rec, "values": [None, 1]}


def test_fast_path_never_accepts_what_the_schema_rejects(tmp_path):
    path = tmp_path / "t.jsonl"
    write_trace(make_trace(), path, threshold=0.0)
    samples = {}
    for rec in lines(path)[1:]:
        samples.setdefault((rec["record"], rec["component"] if "component" in rec else "head_id" in rec), rec)
    checked = 0
    for rec in samples.values():
        kind = rec["record"]
        assert reader_mod._fast_ok(rec, kind), f"fast path refuses a written {kind}: {rec}"
        for variant in _mutations(copy.deepcopy(rec)):
            if reader_mod._fast_ok(variant, kind):
                assert reader_mod._validator(f"strict_{kind}").is_valid(variant), f"fast path accepted {variant}"
            checked += 1
    assert checked > 100
    for rec in (r for r in trace_records(make_trace(), 0.0) if r["record"] == "edge"):  # the writer's fast edge lines
        assert writer_mod.format_record(rec) == json.dumps(rec, separators=(",", ":")), rec


# -- reader errors ---------------------------------------------------------------------------------


def _valid_lines(tmp_path) -> tuple[dict, dict, dict]:
    """A valid meta, component node and per-head edge of an lmxray file."""
    path = tmp_path / "valid.jsonl"
    write_trace(make_trace(), path, threshold=0.0)
    recs = lines(path)
    node = next(r for r in recs if r.get("component") == "residual")
    edge = next(r for r in recs if r["record"] == "edge" and "head_id" in r)
    return recs[0], node, edge


def _bad_cases(meta, node, edge):
    drop = lambda d, k: {x: v for x, v in d.items() if x != k}  # noqa: E731
    j = json.dumps
    return {
        "bad json": ([j(meta), '{"record": "edge", "src_position": 1,'], 2, "not valid JSON"),
        "nan": ([j(meta), j({**edge, "weight": 12345.5}).replace("12345.5", "NaN")], 2, "NaN"),
        "missing weight": ([j(meta), j(node), j(drop(edge, "weight"))], 3, "'weight'"),
        "weight type": ([j(meta), j({**edge, "weight": "abc"})], 2, "'weight'"),
        "negative position": ([j(meta), j({**node, "position": -1})], 2, "'position'"),
        "node without norm": ([j(meta), j(drop(node, "norm"))], 2, "'norm'"),
        "bad component": ([j(meta), j({**node, "component": "attn"})], 2, "'component'"),
        "unknown record": ([j(meta), j({"record": "blob"})], 2, "'record'"),
        "not an object": ([j(meta), "[1, 2]"], 2, "JSON object"),
        "node first": ([j(node)], 1, "meta"),
        "second meta": ([j(meta), j(node), j(meta)], 3, "second meta"),
        "meta missing layers": ([j(drop(meta, "layers"))], 1, "'layers'"),
        "top_k prob type": ([j({**meta, "top_k": [{"token_id": 1, "text": "a", "prob": "high"}]})], 1, "'top_k.0.prob'"),
        "unsupported schema": ([j({**meta, "schema": "lmxray.trace/9"})], 1, "'schema'"),
        "layer not in meta": ([j(meta), j({**edge, "src_layer": 1, "dst_layer": 1})], 2, "'src_layer'"),
        "layers differ": ([j(meta), j({**edge, "dst_layer": 0, "src_layer": 2})], 2, "'dst_layer'"),
        "position past tokens": ([j(meta), j({**edge, "dst_position": 99})], 2, "'dst_position'"),
        "head not in meta": ([j(meta), j({**edge, "head_id": 1})], 2, "'head_id'"),
        "legacy weight type": ([j({"record": "meta"}), j({"record": "edge", "src_position": 1, "dst_position": 0,
                                                          "weight": "x"})], 2, "'weight'"),
        "legacy edge no weight": ([j({"record": "meta"}), "", j({"record": "edge", "src_position": 1,
                                                                  "dst_position": 0})], 3, "'weight'"),
    }


CASES = list(_bad_cases({}, {}, {}))


@pytest.mark.parametrize("case", CASES)
def test_reader_errors_name_file_line_and_field(tmp_path, case):
    body, lineno, needle = _bad_cases(*_valid_lines(tmp_path))[case]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(body) + "\n")
    with pytest.raises(LmxrayError) as err:
        read_trace(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:{lineno}: "), msg
    assert needle in msg, msg
    assert "\n" not in msg and err.value.fix, msg


def test_reader_errors_for_missing_and_empty_files(tmp_path):
    with pytest.raises(LmxrayError, match="no such file"):
        read_trace(tmp_path / "nope.jsonl")
    for text in ("", "\n  \n"):
        (tmp_path / "empty.jsonl").write_text(text)
        with pytest.raises(LmxrayError, match="empty file"):
            read_trace(tmp_path / "empty.jsonl")
    (tmp_path / "bin.jsonl").write_bytes(b'{"record": "meta"}\n\xff\xfe\n')
    with pytest.raises(LmxrayError, match="UTF-8"):
        read_trace(tmp_path / "bin.jsonl")


def test_meta_counts_the_records_and_a_cut_copy_is_caught(tmp_path):
    """The meta record announces the records that follow; a copy cut at a line boundary, or one with
    lines added, is an error naming the file; a file without the count (older builds) still reads."""
    path = tmp_path / "t.jsonl"
    make_trace().save(path)
    text = path.read_text().splitlines(keepends=True)
    recs = [json.loads(line) for line in text]
    kinds = [r["record"] for r in recs[1:]]
    assert recs[0]["records"] == {k: kinds.count(k) for k in ("node", "edge", "flow")}
    assert recs[0]["records"]["edge"] > 0 and recs[0]["records"]["node"] > 0

    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(text[:-3]))
    with pytest.raises(LmxrayError, match=r"cut short \(\d+ of \d+ edge records") as err:
        read_trace(cut)
    assert str(cut) in str(err.value) and "\n" not in str(err.value)
    joined = tmp_path / "joined.jsonl"
    joined.write_text("".join(text + text[-2:]))
    with pytest.raises(LmxrayError, match="more records than the meta record announces"):
        read_trace(joined)
    older = tmp_path / "older.jsonl"
    del recs[0]["records"]
    older.write_text("".join(json.dumps(r) + "\n" for r in recs[:-3]))
    assert read_trace(older).prompt == make_trace().prompt


def test_iter_records_streams_up_to_the_bad_line(tmp_path):
    meta, node, edge = _valid_lines(tmp_path)
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join([json.dumps(meta), json.dumps(node), "", "oops", json.dumps(edge)]) + "\n")
    seen = []
    with pytest.raises(LmxrayError, match=":4: not valid JSON"):
        for lineno, rec in iter_records(path):
            seen.append((lineno, rec["record"]))
    assert seen == [(1, "meta"), (2, "node")]


# -- legacy (rocmforge) files -------------------------------------------------------------------------

SEED_TOKENS = [151643, 785, 6722, 315, 52355, 374, 220, 16, 17, 18, 19, 20, 21, 22]  # 14 tokens; predict at 13


def seed_fixture_lines() -> list[dict]:
    """A hand-made trace in the rocmforge forward-graph shape: meta without 'schema', nodes with values, edges
    without head_id (one per head, so the same (layer, src, dst) repeats) over layers 0..2."""
    recs = [{"record": "meta", "expected_attention": {"13": [0, 1, 3, 4]}, "token_ids": SEED_TOKENS,
             "predicted_token": 56568, "confidence": 0.9999}]
    for pos, tok in enumerate(SEED_TOKENS):
        recs.append({"record": "node", "component": "input_embedding", "layer": 0, "position": pos,
                     "token_id": tok, "values": [0.3, -0.4]})
    node = {"record": "node", "position": 13, "token_id": 22}
    for layer in range(3):
        recs += [{**node, "component": "query", "layer": layer, "values": [1.0, 2.0, 2.0]},
                 {**node, "component": "attention_output", "layer": layer, "values": [0.5]}]
    recs += [{**node, "component": "logits", "layer": 2, "values": [3.5, -1.0]},
             {**node, "component": "confidence", "layer": 0, "token_id": 56568, "values": [0.9999]}]
    edges = [(0, 13, 0, 0.6), (0, 13, 0, 0.5), (0, 13, 6, 0.3), (1, 13, 0, 0.9), (1, 13, 13, 0.2),
             (2, 13, 0, 0.7), (2, 13, 12, 0.25), (2, 12, 0, 0.8)]
    for layer, src, dst, w in edges:
        recs.append({"record": "edge", "kind": "attention", "src_component": "query", "src_layer": layer,
                     "src_position": src, "src_token_id": SEED_TOKENS[src], "dst_component": "value",
                     "dst_layer": layer, "dst_position": dst, "dst_token_id": SEED_TOKENS[dst], "weight": w})
    return recs


def test_seed_format_fixture_is_read(tmp_path):
    path = tmp_path / "seed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in seed_fixture_lines()))
    trace = read_trace(path)
    assert trace.layers == [0, 1, 2] and trace.n_tokens == 14 and trace.position == 13
    assert trace.predicted_token == 56568 and trace.confidence == pytest.approx(0.9999)
    assert trace.expected_attention == {13: [0, 1, 3, 4]}
    assert trace.attention.shape == (3, 14, 14) and trace.attention_heads is None and trace.heads == []
    assert trace.attention[0, 13, 0] == pytest.approx(1.1), "edges repeated per head must be summed"
    assert trace.attention[:, 13, 0].sum() == pytest.approx(2.7)
    assert trace.attention[2, 12, 0] == pytest.approx(0.8) and trace.attention[1, 13, 13] == pytest.approx(0.2)
    assert trace.model.name == "unknown" and trace.model.architecture == "unknown" and trace.model.n_layers == 3
    assert trace.components["input_embedding"].norm.shape == (1, 14)
    assert trace.components["input_embedding"].norm[0, 5] == pytest.approx(0.5)  # |(0.3, -0.4)|
    assert trace.components["query"].norm.shape == (3, 14, 1) and trace.components["query"].norm[1, 13, 0] == 3
    assert np.isnan(trace.components["query"].norm[1, 12, 0])
    assert trace.lens is None and trace.attention_mass is None


def test_legacy_variants_without_token_ids(tmp_path):
    recs = [{"record": "meta", "predicted_token": "Yang", "confidence": 0.9999, "expected_positions": [0, -2]}]
    for head, w in ((0, 0.4), (3, 0.5)):
        recs += [{"record": "edge", "layer": 1, "src_position": 4, "dst_position": 0, "weight": w, "head_id": head},
                 {"record": "edge", "layer": 1, "src_position": 4, "dst_position": 4, "weight": 1 - w, "head_id": head}]
    path = tmp_path / "legacy.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    trace = read_trace(path)
    assert trace.n_tokens == 5 and trace.position == 4 and trace.layers == [1]
    assert trace.predicted_text == "Yang" and trace.predicted_token == -1
    assert trace.expected_attention == {4: [0, 3]}
    assert trace.heads == [0, 3] and trace.attention_heads.shape == (1, 2, 5, 5)
    assert trace.attention[0, 4, 0] == pytest.approx(0.9) and trace.attention_heads[0, 1, 4, 4] == pytest.approx(0.5)
    assert trace.model.n_heads == 4


def test_docs_example_is_a_valid_trace(tmp_path):
    doc = (Path(__file__).parents[1] / "docs" / "trace-format.md").read_text(encoding="utf-8")
    example = doc.split("```json\n", 1)[1].split("```", 1)[0]
    (tmp_path / "example.jsonl").write_text(example)
    trace = read_trace(tmp_path / "example.jsonl")
    assert trace.predicted_text == " city" and trace.layers == [29] and trace.attention[0, 2, 0] == pytest.approx(5.2)
