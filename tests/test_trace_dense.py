""".safetensors traces: bit-identical round trips on tiny models, one-layer reads, conversion both ways, the
convert command, and one-line errors for bad files."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from lmxray.capture.plan import CapturePlan
from lmxray.cli import main
from lmxray.errors import LmxrayError
from lmxray.trace import dense as dense_mod
from lmxray.trace.convert import convert_trace
from lmxray.trace.dense import open_trace
from lmxray.trace.fields import ARRAYS, get_array
from lmxray.trace.reader import read_trace
from lmxray.trace.writer import write_trace
from test_trace_io import assert_close, make_trace
from tiny_models import BosTokenizer, tiny_model

ARRAY_ROOTS = {f.name.split(".")[0] for f in ARRAYS}
PLANS = {
    "per-head, full vectors, lens everywhere": CapturePlan(per_head=True, n_values=None, lens_positions=None),
    "default": CapturePlan(),
    "some layers and heads": CapturePlan(layers=(0, 2), per_head=True, heads=(1, 2), components=("residual",)),
}


@pytest.fixture(scope="module")
def traces():
    from lmxray.models.loader import from_hf

    out = {}
    for family in ("llama", "gpt2", "gemma2"):
        model = from_hf(tiny_model(family), BosTokenizer(), f"tiny-{family}")
        for name, plan in PLANS.items():
            out[f"{family}: {name}"] = model.trace("abcab cab", plan=plan)
    return out


def assert_identical(back, trace) -> None:
    """Every array bit-identical (dtype, shape, bytes) and every other field equal."""
    for f in ARRAYS:
        a, b = get_array(trace, f.name), get_array(back, f.name)
        assert (a is None) == (b is None), f"{f.name}: present in only one"
        if a is not None:
            assert (b.dtype, b.shape) == (a.dtype, a.shape), f"{f.name}: {b.dtype}{b.shape} != {a.dtype}{a.shape}"
            assert b.tobytes() == a.tobytes(), f"{f.name}: bytes differ"
    for field in dataclasses.fields(trace):
        if field.name not in ARRAY_ROOTS:
            assert getattr(back, field.name) == getattr(trace, field.name), field.name


@pytest.mark.parametrize("case", [f"{f}: {p}" for f in ("llama", "gpt2", "gemma2") for p in PLANS])
def test_round_trip_is_bit_identical(traces, tmp_path, case):
    trace = traces[case]
    path = tmp_path / "t.safetensors"
    trace.save(path)
    assert_identical(read_trace(path), trace)
    assert sorted(load_file(path)) == sorted(n for n, *_ in dense_mod._tensors(trace))  # the reference reader agrees


def test_hand_made_trace_round_trips_exactly(tmp_path):
    trace = make_trace()
    trace.components["residual"].values[0, 1, 0] = np.nan  # NaN where not captured survives too
    path = tmp_path / "t.safetensors"
    trace.save(path)
    assert_identical(read_trace(path), trace)


def test_one_layer_is_read_alone(traces, tmp_path):
    trace = traces["llama: some layers and heads"]
    path = tmp_path / "t.safetensors"
    trace.save(path)
    with open_trace(path) as f:
        assert f.layers == [0, 2] and f.heads == [1, 2]
        np.testing.assert_array_equal(f.layer_map(2), trace.attention[1])
        np.testing.assert_array_equal(f.layer_map(0, head=2), trace.attention_heads[0, 1])
        for bad, needle in (((1,), "layer 1 is not in this trace"), ((0, 0), "head 0 has no per-head map")):
            with pytest.raises(LmxrayError, match=needle):
                f.layer_map(*bad)
        assert f.array("lens.top_ids").tobytes() == trace.lens.top_ids.tobytes()
        assert f.array("components.query.norm") is None
    with pytest.raises(LmxrayError, match="closed"):
        f.layer_map(0)


def test_jsonl_to_safetensors_keeps_the_thresholded_maps(tmp_path):
    trace = make_trace()
    jsonl, dense, back = tmp_path / "t.jsonl", tmp_path / "t.safetensors", tmp_path / "back.jsonl"
    write_trace(trace, jsonl, threshold=0.2)
    done = convert_trace(jsonl, dense)
    assert done["format"] == "safetensors" and done["maps_threshold"] == 0.2
    from_dense, from_jsonl = read_trace(dense), read_trace(jsonl)
    assert from_dense.maps_threshold == 0.2
    assert_identical(from_dense, from_jsonl)
    assert_close("thresholded", from_dense.attention, np.where(trace.attention >= 0.2, trace.attention, 0))
    convert_trace(dense, back)
    assert [json.loads(x)["threshold"] for x in back.read_text().splitlines()[:1]] == [0.2]  # never claims more


def test_safetensors_to_jsonl_equals_a_direct_write(tmp_path):
    trace = make_trace()
    dense, via, direct = tmp_path / "t.safetensors", tmp_path / "via.jsonl", tmp_path / "direct.jsonl"
    trace.save(dense)
    convert_trace(dense, via, threshold=0.0)
    write_trace(trace, direct, threshold=0.0)
    assert via.read_text() == direct.read_text()


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "t.safetensors"
    path.write_bytes(b"old")
    calls = []

    def failing(a, dtype=None):
        calls.append(1)
        if len(calls) > 5:
            raise RuntimeError("simulated failure mid-write")
        return np.asarray(a, dtype=dtype, order="C")

    monkeypatch.setattr(dense_mod.np, "ascontiguousarray", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        make_trace().save(path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["t.safetensors"] and path.read_bytes() == b"old"
    with pytest.raises(LmxrayError, match="JSONL traces only"):
        make_trace().save(path, threshold=0.1)


# -- the convert command ---------------------------------------------------------------------------


def test_convert_command_both_ways(tmp_path, capsys):
    jsonl, dense, back = tmp_path / "t.jsonl", tmp_path / "t.safetensors", tmp_path / "back.jsonl"
    write_trace(make_trace(), jsonl, threshold=0.05)
    assert main(["convert", str(jsonl), str(dense)]) == 0
    assert "weights >= 0.05" in capsys.readouterr().out
    assert main(["convert", str(dense), str(back), "--threshold", "0.1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "jsonl"
    assert json.loads(back.read_text().splitlines()[0])["threshold"] == 0.1


@pytest.mark.parametrize("args, needle", [
    (["t.jsonl", "out.bin"], "cannot tell the format of the output"),
    (["t.jsonl", "out.jsonl"], "are both jsonl"),
    (["missing.jsonl", "out.safetensors"], "no such file"),
    (["bad.jsonl", "out.safetensors"], "not valid JSON"),
    (["bad.safetensors", "out.jsonl"], "not a .safetensors file"),
    (["t.jsonl", "out.safetensors", "--threshold", "0.1"], "threshold applies when writing JSONL"),
    (["t.jsonl", "nodir/out.safetensors"], "does not exist"),
    (["t.jsonl", "t.jsonl"], "are both jsonl"),
    (["t.safetensors", "t.safetensors"], "are both safetensors"),
    (["dir.jsonl", "out.safetensors"], "folder"),
])
def test_convert_errors_are_one_line_exit_2_and_leave_no_file(tmp_path, capsys, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    write_trace(make_trace(), tmp_path / "t.jsonl")
    make_trace().save(tmp_path / "t.safetensors")
    (tmp_path / "bad.jsonl").write_text('{"record": "meta", "schema"\n')
    (tmp_path / "bad.safetensors").write_text("not binary at all\n")
    (tmp_path / "dir.jsonl").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["convert", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# -- bad .safetensors files ---------------------------------------------------------------------------


def _parts(tmp_path):
    path = tmp_path / "good.safetensors"
    make_trace().save(path)
    with open_trace(path) as f:
        meta = f.meta
    return load_file(path), meta


def _bad_files(tensors, meta):
    """name -> (tensors, metadata or raw bytes, expected words in the error)."""
    md = lambda m: {"format": "lmxray.trace/1", "lmxray": json.dumps(m)}  # noqa: E731
    t = dict(tensors)
    drop = lambda d, k: {x: v for x, v in d.items() if x != k}  # noqa: E731
    return {
        "weights file": (t, {"format": "pt"}, "not an lmxray trace"),
        "no metadata": (t, None, "no lmxray metadata"),
        "meta not JSON": (t, {"format": "lmxray.trace/1", "lmxray": "{oops"}, "not valid JSON"),
        "meta nested deep": (t, {"format": "lmxray.trace/1", "lmxray": "[" * 100_000}, "not valid JSON"),
        "meta a list": (t, {"format": "lmxray.trace/1", "lmxray": "[1]"}, "not a JSON object"),
        "meta misses layers": (t, md(drop(meta, "layers")), "'layers'"),
        "position past tokens": (t, md({**meta, "position": 99}), "'position'"),
        "head past model": (t, md({**meta, "heads": [0, 9]}), "'heads'"),
        "missing layer tensor": (drop(t, "attention.2"), md(meta), "attention.2 is missing"),
        "extra layer tensor": ({**t, "attention.1": t["attention.0"]}, md(meta), "attention.1 is not a listed layer"),
        "unknown tensor": ({**t, "gate": t["entropy"]}, md(meta), "unknown tensor 'gate'"),
        "wrong dtype": ({**t, "entropy": t["entropy"].astype(np.float64)}, md(meta), "dtype F64"),
        "wrong shape": ({**t, "entropy": t["entropy"][:, :2]}, md(meta), "entropy has shape"),
        "ragged layers": ({**t, "attention.0": t["attention.0"][:3]}, md(meta), "differ in shape"),
        "values without norm": (drop(t, "components.residual.norm"), md(meta), "'components.residual.norm' is missing"),
        "part of the lens": (drop(t, "lens.top_probs"), md(meta), "'lens.top_probs' is missing"),
        "lens id past vocab": ({**t, "lens.top_ids": t["lens.top_ids"] + 10**6}, md(meta), "outside"),
    }


CASES = list(_bad_files({k: np.zeros((3, 3)) for k in ("attention.0", "attention.2", "entropy",
                                                          "components.residual.norm", "lens.top_ids", "lens.top_probs")},
                        {}))


@pytest.mark.parametrize("case", CASES)
def test_bad_safetensors_files_are_one_line_errors(tmp_path, case):
    tensors, metadata, needle = _bad_files(*_parts(tmp_path))[case]
    path = tmp_path / "bad.safetensors"
    save_file(tensors, path, metadata=metadata)
    with pytest.raises(LmxrayError) as err:
        read_trace(path)
    assert needle in str(err.value) and "\n" not in str(err.value), str(err.value)


@pytest.mark.parametrize("cut", [0, 5, 8, 9, 200, -1])
def test_truncated_and_foreign_bytes_are_one_line_errors(tmp_path, cut):
    good = tmp_path / "good.safetensors"
    make_trace().save(good)
    raw = good.read_bytes()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(raw[:cut] if cut >= 0 else raw[:-3])
    with pytest.raises(LmxrayError, match="safetensors") as err:
        read_trace(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("suffix", [".jsonl", ".safetensors"])
def test_legacy_traces_are_read_but_not_rewritten(tmp_path, suffix):
    from test_trace_io import seed_fixture_lines

    src = tmp_path / "legacy.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in seed_fixture_lines()))
    legacy = read_trace(src)
    legacy.top_k[0].token_id = -1
    with pytest.raises(LmxrayError, match="prediction is unknown"):
        legacy.save(tmp_path / f"out{suffix}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["legacy.jsonl"]


def test_trace_command_writes_safetensors_that_equal_the_model_trace(tmp_path, tiny_dir, capsys):
    """`lmxray trace --out x.safetensors` then read_trace: every array equals Model.trace's, bit for bit."""
    import lmxray

    out = tmp_path / "t.safetensors"
    assert main(["trace", "hello world again", "--model", str(tiny_dir), "--per-head", "--out", str(out)]) == 0
    capsys.readouterr()
    direct = lmxray.load(str(tiny_dir)).trace("hello world again", plan=CapturePlan(per_head=True))
    back = read_trace(out)
    for field in ARRAYS:
        a, b = get_array(direct, field.name), get_array(back, field.name)
        assert (a is None) == (b is None), field.name
        if a is not None:
            assert np.array_equal(a, b, equal_nan=True), f"{field.name} differs after the CLI's .safetensors"
    assert main(["trace", "hi", "--model", str(tiny_dir), "--out", str(tmp_path / "f.safetensors")]) == 0
    assert main(["flow", "hi", "--model", str(tiny_dir), "--out", str(tmp_path / "f.safetensors")]) == 2
    assert "JSONL trace with flow records" in capsys.readouterr().err
