"""The trace readers survive any input: every bad file is one LmxrayError line, never another exception or a
big allocation (issue 10's cases one by one, then seeded mutants of JSONL and .safetensors traces)."""

from __future__ import annotations

import json
import random
import struct
import time

import pytest

from lmxray.errors import LmxrayError
from lmxray.trace.fields import trace_problem
from lmxray.trace.reader import read_trace
from lmxray.trace.writer import write_trace
from test_trace_io import make_trace, seed_fixture_lines

FUZZ_SEED = 20261201
N_JSONL_MUTANTS = 2000  # issue 10: >= 2,000 mutants read and summarised in under 60 s
N_DENSE_MUTANTS = 200
HUGE = (10**30, 2**63, 2**64 + 1, 10**7, 1.7e308, -1, 1.5, 2.0, True, None, "x", [], {}, [[1]], 1e-320)


def _valid(tmp_path) -> list[dict]:
    path = tmp_path / "valid.jsonl"
    write_trace(make_trace(), path, threshold=0.05)
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path, recs) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in recs))


def _read_error(path) -> str:
    with pytest.raises(LmxrayError) as err:
        read_trace(path)
    msg = str(err.value)
    assert "\n" not in msg and err.value.fix, msg
    return msg


def _first(recs, pred):
    return next(i for i, r in enumerate(recs) if pred(r))


# -- issue 10's cases ------------------------------------------------------------------------------


def _case(recs, name):
    meta = recs[0]
    edge = _first(recs, lambda r: r["record"] == "edge" and "head_id" in r)
    query = _first(recs, lambda r: r.get("component") == "query")
    lens = _first(recs, lambda r: r.get("component") == "logits")
    if name == "position past the tokens":
        recs[0] = {**meta, "position": 99}
    elif name == "weight 1.7e308":
        recs[edge] = {**recs[edge], "weight": 1.7e308}
    elif name == "node head_id 10,000,000":
        recs[query] = {**recs[query], "head_id": 10_000_000}
    elif name == "edge head_id 10**30":
        recs[edge] = {**recs[edge], "head_id": 10**30}
    elif name == "float head_id":
        recs[query] = {**recs[query], "head_id": 1.5}
    elif name == "ragged entropy":
        recs[0] = {**meta, "entropy": [meta["entropy"][0], meta["entropy"][1][:-1]]}
    elif name == "entropy of strings":
        recs[0] = {**meta, "entropy": [[["a"] * len(meta["token_ids"])] * 4] * 2}
    elif name == "huge int position":
        recs[edge] = {**recs[edge], "src_position": 10**30}
    elif name == "huge token id in meta":
        recs[0] = {**meta, "token_ids": [10**30] + meta["token_ids"][1:]}
    elif name == "edge positions of 10**7":
        recs[edge] = {**recs[edge], "src_position": 10**7, "dst_position": 10**7}
    elif name == "top_k empty":
        recs[0] = {**meta, "top_k": []}
    elif name == "tokens shorter than token_ids":
        recs[0] = {**meta, "tokens": meta["tokens"][:-1]}
    elif name == "lens token_id 10**30":
        recs[lens] = {**recs[lens], "top_k": [{"token_id": 10**30, "prob": 0.1}]}
    elif name == "lens target_rank 10**30":
        recs[lens] = {**recs[lens], "target_rank": 10**30}
    elif name == "head_id on a residual node":
        i = _first(recs, lambda r: r.get("component") == "residual")
        recs[i] = {**recs[i], "head_id": 0}
    elif name == "model with 10**9 heads":
        recs[0] = {**meta, "model": {**meta["model"], "n_heads": 10**9}}
    elif name == "layer twice in meta":
        recs[0] = {**meta, "layers": [0, 0]}
    elif name == "expected attention past the tokens":
        recs[0] = {**meta, "expected_attention": {"5": [0, 60]}}
    elif name == "norm past float32":
        recs[query] = {**recs[query], "norm": 1e39}
    return recs


CASES = {
    "position past the tokens": "'position' is 99", "weight 1.7e308": "'weight'",
    "node head_id 10,000,000": "'head_id' is 10000000", "edge head_id 10**30": "'head_id'",
    "float head_id": "'head_id'", "ragged entropy": "'entropy' is ragged",
    "entropy of strings": "'entropy' holds 'a'", "huge int position": "'src_position'",
    "huge token id in meta": "'token_ids'", "edge positions of 10**7": "'src_position' is 10000000",
    "top_k empty": "'top_k'", "tokens shorter than token_ids": "'tokens' has 5 items",
    "lens token_id 10**30": "'top_k.0.token_id'", "lens target_rank 10**30": "'target_rank'",
    "head_id on a residual node": "'head_id' is set on a residual node", "model with 10**9 heads": "'model.n_heads'",
    "layer twice in meta": "'layers' lists an entry twice", "expected attention past the tokens": "'expected_attention",
    "norm past float32": "'norm'",
}


@pytest.mark.parametrize("name", list(CASES))
def test_issue_10_cases_are_one_line_errors(tmp_path, name):
    path = tmp_path / "bad.jsonl"
    _write(path, _case(_valid(tmp_path), name))
    start = time.perf_counter()
    msg = _read_error(path)
    assert CASES[name] in msg, msg
    assert time.perf_counter() - start < 5, "a bad file must be refused quickly"


@pytest.mark.parametrize("line", ["[" * 100_000, '{"record": "edge", "weight": ' + "[" * 100_000])
def test_deep_nesting_is_an_error_not_a_recursion_crash(tmp_path, line):
    recs = _valid(tmp_path)
    path = tmp_path / "deep.jsonl"
    _write(path, [recs[0], line])
    assert "nested too deeply" in _read_error(path)


def test_legacy_edge_positions_of_10_7_are_refused_before_allocating(tmp_path):
    path = tmp_path / "legacy.jsonl"
    _write(path, [{"record": "meta"}, {"record": "edge", "src_position": 10**7, "dst_position": 0, "weight": 0.5}])
    assert "would need" in _read_error(path)
    _write(path, [{"record": "meta"}, {"record": "edge", "src_position": 10**30, "dst_position": 0, "weight": 0.5}])
    assert "'src_position'" in _read_error(path)


def test_legacy_file_with_meta_and_one_edge_reads(tmp_path):
    path = tmp_path / "legacy.jsonl"
    _write(path, [{"record": "meta"}, {"record": "edge", "src_position": 1, "dst_position": 0, "weight": 0.5}])
    trace = read_trace(path)
    assert trace.n_tokens == 2 and trace.attention[0, 1, 0] == 0.5
    assert trace.predicted_token == -1 and trace.predicted_text == "" and trace.confidence != trace.confidence


def test_legacy_bounds(tmp_path):
    path = tmp_path / "legacy.jsonl"
    for edge, needle in (({"head_id": 10_000_000}, "'head_id'"), ({"layer": 10**30}, "'layer'"),
                         ({"weight": 1.7e308}, "'weight'")):
        _write(path, [{"record": "meta"}, {"record": "edge", "src_position": 1, "dst_position": 0, "weight": 0.5,
                                           **edge}])
        assert needle in _read_error(path)


@pytest.mark.parametrize("bad", [123, None, "", b"x.jsonl"])
def test_read_trace_refuses_what_is_not_a_path(bad):
    with pytest.raises(LmxrayError, match="path must name a trace file"):
        read_trace(bad)


# -- seeded mutants --------------------------------------------------------------------------------


def _paths(obj, prefix=()):
    """Every (path, value) inside a JSON value."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:6]):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    if not path:
        return value
    obj[path[0]] = _set(obj[path[0]], path[1:], value)
    return obj


def _mutate(rng: random.Random, recs: list) -> list:
    """One to three random changes: a value replaced or dropped, a line dropped, repeated or cut, bytes flipped."""
    lines = [json.dumps(r) for r in recs]
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        op = rng.random()
        if op < 0.6:
            try:
                rec = json.loads(lines[i])
            except ValueError:  # cut or flipped by an earlier change
                continue
            path, value = rng.choice(list(_paths(rec))[1:] or [((), rec)])
            choices = list(HUGE) + [value * 2 if isinstance(value, (int, float)) else value, -value
                                    if isinstance(value, (int, float)) and not isinstance(value, bool) else 0]
            if path and rng.random() < 0.15 and isinstance(rec, dict):
                parent = _set(rec, (), rec)
                for p in path[:-1]:
                    parent = parent[p]
                if isinstance(parent, dict):
                    parent.pop(path[-1], None)
            else:
                rec = _set(rec, path, rng.choice(choices))
            lines[i] = json.dumps(rec)
        elif op < 0.7:
            del lines[i]
            if not lines:
                lines = ["{}"]
        elif op < 0.8:
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
        elif op < 0.9:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        else:
            b = bytearray(lines[i].encode())
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            lines[i] = b.decode("utf-8", errors="replace")
    return lines


def _check_read(path) -> bool:
    """True when the file reads into a consistent trace and summarises, False when refused with one line;
    anything else fails."""
    from lmxray.analysis.convergence import convergence, summarize

    try:
        trace = read_trace(path)
        summarize(trace)
        convergence(trace)
    except LmxrayError as e:
        assert "\n" not in str(e), str(e)
        return False
    if trace.model.source != "legacy":
        assert trace_problem(trace) is None, trace_problem(trace)
    return True


def test_fuzzed_jsonl_traces_read_or_fail_with_one_line(tmp_path):
    rng = random.Random(FUZZ_SEED)
    sources = [_valid(tmp_path), seed_fixture_lines()]
    path = tmp_path / "mutant.jsonl"
    outcomes = []
    start = time.perf_counter()
    for n in range(N_JSONL_MUTANTS):
        lines = _mutate(rng, sources[n % 2])
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            outcomes.append(_check_read(path))
        except AssertionError:
            raise
        except Exception as e:  # noqa: BLE001  (the point: nothing but LmxrayError)
            pytest.fail(f"mutant {n} raised {type(e).__name__}: {e}\n{path.read_text()[:2000]}")
    assert 0 < sum(outcomes) < len(outcomes), "the mutants must include both readable and refused files"
    assert time.perf_counter() - start < 60


def test_fuzzed_safetensors_traces_read_or_fail_with_one_line(tmp_path):
    rng = random.Random(FUZZ_SEED + 1)
    good = tmp_path / "good.safetensors"
    make_trace().save(good)
    raw = good.read_bytes()
    n_header = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n_header])
    meta = json.loads(header["__metadata__"]["lmxray"])
    path = tmp_path / "mutant.safetensors"
    outcomes = []
    for n in range(N_DENSE_MUTANTS):
        op = rng.random()
        if op < 0.4:  # a value inside the meta JSON
            m = json.loads(json.dumps(meta))
            p, value = rng.choice(list(_paths(m))[1:])
            m = _set(m, p, rng.choice(HUGE))
            h = {**header, "__metadata__": {**header["__metadata__"], "lmxray": json.dumps(m)}}
            body = json.dumps(h).encode()
            data = struct.pack("<Q", len(body)) + body + raw[8 + n_header:]
        elif op < 0.7:  # a tensor's declared shape, dtype or offsets
            h = json.loads(json.dumps(header))
            name = rng.choice([k for k in h if k != "__metadata__"])
            key = rng.choice(["shape", "dtype", "data_offsets"])
            h[name][key] = rng.choice([[1], [0], [10**12], "F64", "I64", [0, 8], [8, 0], "x", []])
            body = json.dumps(h).encode()
            data = struct.pack("<Q", len(body)) + body + raw[8 + n_header:]
        else:  # raw bytes flipped or cut
            b = bytearray(raw)
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(min(len(b), 8 + n_header + 64))] = rng.randrange(256)
            data = bytes(b[: rng.randrange(len(b) + 1)] if rng.random() < 0.3 else b)
        path.write_bytes(data)
        try:
            outcomes.append(_check_read(path))
        except AssertionError:
            raise
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"mutant {n} raised {type(e).__name__}: {e}")
    assert 0 < sum(outcomes) < len(outcomes)


@pytest.mark.parametrize("suffix", [".jsonl", ".safetensors"])
def test_a_device_named_like_a_trace_is_refused_not_read(tmp_path, suffix):
    """A character device (here /dev/zero's numbers) would be read forever: one line instead, for every reader."""
    import os
    import stat

    from lmxray.trace.dense import open_trace
    from lmxray.trace.reader import iter_records

    zero = tmp_path / f"zero{suffix}"
    os.mknod(zero, stat.S_IFCHR | 0o600, os.makedev(1, 5))
    for read in (read_trace, lambda p: next(iter_records(p)), open_trace):
        with pytest.raises(LmxrayError, match="is a character device, not a trace file"):
            read(zero)
