"""The run store: keys, round trips, LRU eviction, recovery on open, threads at once, model identity, cache hits."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import lmxray
from lmxray.capture.plan import CapturePlan
from lmxray.errors import LmxrayError
from lmxray.store import RunRecord, TraceStore, model_identity, plan_key, trace_cached
from lmxray.store import trace_store as store_mod
from lmxray.trace.fields import ARRAYS, get_array
from test_trace_io import make_trace

STORED_TOL = 0.0  # a stored trace reads back bit for bit: every array, every float
MODEL_ID = "c" * 64
ARRAY_ROOTS = {f.name.split(".")[0] for f in ARRAYS}


def numbered_trace(i: int):
    """Trace number ``i``: arrays drawn with seed ``i``, prompt "run i" (so a record names its trace)."""
    trace = make_trace(seed=i)
    trace.prompt = f"run {i}"
    return trace


def put_numbered(store: TraceStore, i: int) -> RunRecord:
    key = store.key(MODEL_ID, f"run {i}", CapturePlan())
    return store.put(key, numbered_trace(i), model_id=MODEL_ID, model_name="tiny", prompt=f"run {i}",
                     plan=CapturePlan())


def assert_same_trace(back, trace, what: str = "") -> None:
    """Every array equal within STORED_TOL (the same bytes) and every other field equal; prints the drift."""
    for f in ARRAYS:
        a, b = get_array(trace, f.name), get_array(back, f.name)
        assert (a is None) == (b is None), f"{what}{f.name}: present in only one"
        if a is None:
            continue
        assert (b.dtype, b.shape) == (a.dtype, a.shape), f"{what}{f.name}: {b.dtype}{b.shape} != {a.dtype}{a.shape}"
        if b.tobytes() != a.tobytes():
            drift = np.nanmax(np.abs(b.astype(np.float64) - a.astype(np.float64))) if a.size else 0.0
            raise AssertionError(f"{what}{f.name}: drift {drift:.3g} (NaNs at the same places: "
                                 f"{np.array_equal(np.isnan(a), np.isnan(b))}) exceeds STORED_TOL={STORED_TOL}")
    for field in dataclasses.fields(trace):
        if field.name not in ARRAY_ROOTS:
            assert getattr(back, field.name) == getattr(trace, field.name), f"{what}{field.name} differs"


def assert_consistent(store: TraceStore) -> list[RunRecord]:
    """Files on disk are exactly the listed runs' traces, sizes add up, keys are unique, every run opens."""
    runs = store.list(limit=10_000)
    files = sorted(os.listdir(store.traces))
    assert files == sorted(f"{r.run_id}.safetensors" for r in runs), f"files {files} != runs"
    assert len({r.key for r in runs}) == len(runs), "one key stored twice"
    assert store.total_bytes() == sum(r.bytes for r in runs) == sum(store.trace_path(r.run_id).stat().st_size
                                                                    for r in runs)
    for r in runs:
        assert_same_trace(store.open(r.run_id), numbered_trace(int(r.prompt.split()[1])), f"run {r.prompt}: ")
    return runs


# -- keys ------------------------------------------------------------------------------------------------


def test_each_part_of_the_key_changes_it(tmp_path, monkeypatch):
    store = TraceStore(tmp_path)
    base = store.key(MODEL_ID, "hello", CapturePlan())
    assert len(base) == 64 and base == store.key(MODEL_ID, "hello", {}), "a dict plan fills in the defaults"
    assert store.key(MODEL_ID, "hello", {"per_head": True}) == store.key(MODEL_ID, "hello", CapturePlan(per_head=True))
    assert store.key(MODEL_ID, "hello", CapturePlan(threshold=0)) == store.key(MODEL_ID, "hello",
                                                                               CapturePlan(threshold=0.0))
    others = {store.key("d" * 64, "hello", CapturePlan()), store.key(MODEL_ID, "hello!", CapturePlan()),
              store.key(MODEL_ID, [1, 2], CapturePlan()), store.key(MODEL_ID, "hello", CapturePlan(per_head=True)),
              store.key(MODEL_ID, "hello", CapturePlan(), position=-2)}
    monkeypatch.setattr(store_mod, "__version__", "9.9.9")
    others.add(store.key(MODEL_ID, "hello", CapturePlan()))
    assert len(others) == 6 and base not in others


def test_plan_key_is_json_ready_and_canonical():
    key = plan_key(CapturePlan(layers=(0, 2), threshold=0))
    assert json.loads(json.dumps(key)) == key and key["layers"] == [0, 2] and key["threshold"] == 0.0
    assert isinstance(key["threshold"], float)
    assert plan_key({"layers": [0, 2], "threshold": 0}) == key


# -- one run ---------------------------------------------------------------------------------------------


def test_a_put_run_is_got_listed_and_opened_bit_for_bit(tmp_path):
    store = TraceStore(tmp_path, max_bytes=None)
    record = put_numbered(store, 7)
    assert (store.folder / "index.sqlite").is_file() and store.folder == tmp_path / ".lmxray-store"
    assert record.prompt == "run 7" and record.n_tokens == 6 and record.model_name == "tiny"
    assert record.bytes == store.trace_path(record.run_id).stat().st_size > 0
    assert store.trace_path(record.run_id).parent == tmp_path / ".lmxray-store" / "traces"
    hit = store.get(record.key)
    assert hit.run_id == record.run_id and hit.last_used >= record.last_used
    assert store.record(record.run_id) == hit
    assert [r.run_id for r in store.list()] == [record.run_id]
    assert json.loads(json.dumps(record.to_dict()))["plan"] == plan_key(CapturePlan())
    assert_same_trace(store.open(record.run_id), numbered_trace(7))
    assert store.total_bytes() == record.bytes


def test_runs_survive_a_restart_and_list_newest_first(tmp_path):
    store = TraceStore(tmp_path)
    made = [put_numbered(store, i) for i in range(4)]
    store.close()
    again = TraceStore(tmp_path)
    assert [r.run_id for r in again.list()] == [r.run_id for r in reversed(made)]
    assert [r.run_id for r in again.list(limit=2, offset=1)] == [made[2].run_id, made[1].run_id]
    assert again.list(model_id="d" * 64) == [] and len(again.list(model_id=MODEL_ID)) == 4
    assert_consistent(again)


def test_a_put_of_a_stored_key_keeps_the_stored_run(tmp_path):
    store = TraceStore(tmp_path)
    first = put_numbered(store, 1)
    second = store.put(first.key, numbered_trace(2), model_id=MODEL_ID, model_name="tiny", prompt="run 1",
                       plan=CapturePlan())
    assert second.run_id == first.run_id and len(store.list()) == 1
    assert_consistent(store)


def test_delete_removes_the_row_then_the_file(tmp_path):
    store = TraceStore(tmp_path)
    record = put_numbered(store, 1)
    store.delete(record.run_id)
    assert store.get(record.key) is None and not store.trace_path(record.run_id).exists()
    with pytest.raises(LmxrayError, match=f"no run '{record.run_id}' in the store"):
        store.delete(record.run_id)
    with pytest.raises(LmxrayError, match="no run"):
        store.open(record.run_id)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 32, "a" * 31, "a" * 32 + "\n", 7, None, "/" + "a" * 31])
def test_a_run_id_that_is_not_32_hex_digits_is_refused(tmp_path, bad):
    store = TraceStore(tmp_path)
    for call in (store.trace_path, store.record, store.open, store.delete):
        with pytest.raises(LmxrayError, match="is not a valid run_id"):
            call(bad)


@pytest.mark.parametrize("make, words", [
    (lambda s, p: s.get("x"), "not a valid key"),
    (lambda s, p: s.list(limit=-1), "limit must be"),
    (lambda s, p: s.list(model_id=3), "model_id must be"),
    (lambda s, p: s.key("", "a", {}), "model_id must be"),
    (lambda s, p: s.key(MODEL_ID, "", {}), "prompt must be"),
    (lambda s, p: s.key(MODEL_ID, [1, True], {}), "prompt must be"),
    (lambda s, p: s.key(MODEL_ID, "a", {"nope": 1}), "unknown capture plan key"),
    (lambda s, p: s.key(MODEL_ID, "a", {}, position=True), "position must be"),
    (lambda s, p: s.put("a" * 64, "not a trace", model_id=MODEL_ID, model_name="m", prompt="a", plan={}),
     "trace must be"),
    (lambda s, p: TraceStore(p, max_bytes=-1), "max_bytes must be"),
    (lambda s, p: TraceStore(p, max_bytes=True), "max_bytes must be"),
    (lambda s, p: TraceStore(p / "file"), "is not a folder"),
])
def test_bad_calls_are_one_line_user_errors(tmp_path, make, words):
    store = TraceStore(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(LmxrayError, match=words) as err:
        make(store, tmp_path)
    assert "\n" not in str(err.value) and err.value.fix


def test_an_index_that_is_not_sqlite_is_a_user_error(tmp_path):
    (tmp_path / ".lmxray-store").mkdir()
    (tmp_path / ".lmxray-store" / "index.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(LmxrayError, match="run store index") as err:
        TraceStore(tmp_path)
    assert "\n" not in str(err.value)


# -- eviction --------------------------------------------------------------------------------------------


def test_least_recently_used_runs_are_evicted_over_the_limit(tmp_path):
    one = put_numbered(TraceStore(tmp_path / "probe"), 0).bytes
    store = TraceStore(tmp_path / "runs", max_bytes=3 * one + one // 2)  # room for three runs
    runs = [put_numbered(store, i) for i in range(3)]
    assert store.get(runs[0].key) is not None  # run 0 used again: run 1 is now the least recently used
    fourth = put_numbered(store, 3)
    assert {r.run_id for r in store.list()} == {runs[0].run_id, runs[2].run_id, fourth.run_id}
    assert store.get(runs[1].key) is None and not store.trace_path(runs[1].run_id).exists()
    assert store.total_bytes() <= store.max_bytes
    store.open(runs[2].run_id)  # opening counts as a use too: run 0 goes next
    put_numbered(store, 4)
    assert store.get(runs[0].key) is None and store.get(runs[2].key) is not None
    assert_consistent(store)


def test_a_run_larger_than_the_limit_stays_alone_and_a_lower_limit_applies_on_open(tmp_path):
    store = TraceStore(tmp_path, max_bytes=None)
    runs = [put_numbered(store, i) for i in range(3)]
    store.close()
    smaller = TraceStore(tmp_path, max_bytes=2 * runs[0].bytes)
    assert [r.run_id for r in smaller.list()] == [runs[2].run_id, runs[1].run_id], "the oldest evicted on open"
    tiny = TraceStore(tmp_path, max_bytes=1)
    assert tiny.list() == []
    big = put_numbered(tiny, 9)
    assert [r.run_id for r in tiny.list()] == [big.run_id], "the run just put is never evicted"
    assert_consistent(tiny)


# -- recovery --------------------------------------------------------------------------------------------


def test_open_removes_orphans_and_temp_files_and_drops_rows_without_a_file(tmp_path):
    store = TraceStore(tmp_path)
    kept, lost = put_numbered(store, 1), put_numbered(store, 2)
    store.close()
    traces = tmp_path / ".lmxray-store" / "traces"
    orphan = traces / f"{'e' * 32}.safetensors"  # a kill between the rename and the commit
    shutil.copy(traces / f"{kept.run_id}.safetensors", orphan)
    (traces / f".tmp-{'f' * 32}.safetensors.abc123").write_bytes(b"half a trace")
    (traces / f".tmp-{'f' * 32}.safetensors.abc123.tmpxyz").write_bytes(b"half")
    (traces / f"{lost.run_id}.safetensors").unlink()
    again = TraceStore(tmp_path)
    assert sorted(os.listdir(traces)) == [f"{kept.run_id}.safetensors"]
    assert [r.run_id for r in again.list()] == [kept.run_id]
    assert_consistent(again)


def test_a_row_whose_file_vanished_is_dropped_by_get(tmp_path):
    store = TraceStore(tmp_path)
    record = put_numbered(store, 1)
    store.trace_path(record.run_id).unlink()
    assert store.get(record.key) is None and store.list() == []
    assert put_numbered(store, 1).run_id != record.run_id  # stored again under the same key


def test_a_put_that_fails_to_write_leaves_nothing(tmp_path):
    store = TraceStore(tmp_path)
    broken = numbered_trace(1)
    broken.attention = broken.attention[:, :2]  # out of step with the token count: write_dense refuses it
    with pytest.raises(LmxrayError, match="cannot write"):
        store.put(store.key(MODEL_ID, "x", {}), broken, model_id=MODEL_ID, model_name="m", prompt="x", plan={})
    assert store.list() == [] and os.listdir(store.traces) == []


# -- threads ---------------------------------------------------------------------------------------------


def test_threads_putting_and_getting_at_once_store_each_key_once(tmp_path):
    store = TraceStore(tmp_path, max_bytes=None)
    keys = {i: store.key(MODEL_ID, f"run {i}", CapturePlan()) for i in range(6)}
    seen: dict[int, set] = {i: set() for i in keys}
    errors = []
    lock = threading.Lock()

    def worker(seed):
        rng = random.Random(seed)
        try:
            for _ in range(4):
                for i in rng.sample(sorted(keys), len(keys)):
                    record = store.get(keys[i]) or put_numbered(store, i)
                    assert_same_trace(store.open(record.run_id), numbered_trace(i), f"thread {seed}, run {i}: ")
                    with lock:
                        seen[i].add(record.run_id)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert all(len(ids) == 1 for ids in seen.values()), f"a key got several runs: {seen}"
    runs = assert_consistent(store)
    assert {r.run_id for r in runs} == {next(iter(ids)) for ids in seen.values()}


# -- model identity and cache hits ----------------------------------------------------------------------


def test_model_identity_follows_the_weights(tiny_dir, tmp_path):
    base = model_identity(lmxray.load(str(tiny_dir), device="cpu"))
    assert len(base) == 64 and base == model_identity(lmxray.load(str(tiny_dir), device="cpu"))
    others = [model_identity(lmxray.load(str(tiny_dir), device="cpu", dtype="bfloat16")),
              model_identity(lmxray.load(str(tiny_dir), device="cpu", init="random", seed=0)),
              model_identity(lmxray.load(str(tiny_dir), device="cpu", init="random", seed=1))]
    assert len(set(others)) == 3 and base not in others
    copy = Path(shutil.copytree(tiny_dir, tmp_path / "copy"))
    weights = copy / "model.safetensors"
    model = lmxray.load(str(copy), device="cpu")
    before = model_identity(model)
    st = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of the last weight: same size, and the mtime is set back below
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert model_identity(model) != before, "a weight file rewritten in place must change the identity"


def test_an_in_memory_model_is_identified_by_its_weights():
    from lmxray.models.loader import from_hf
    from tiny_models import BosTokenizer, tiny_model

    a = model_identity(from_hf(tiny_model("llama"), BosTokenizer()))
    assert a == model_identity(from_hf(tiny_model("llama"), BosTokenizer()))
    assert a != model_identity(from_hf(tiny_model("llama", seed=1), BosTokenizer()))
    with pytest.raises(LmxrayError, match="needs an lmxray Model"):
        model_identity("smollm2")


def test_a_cache_hit_runs_no_forward_pass_and_reads_back_the_same_trace(tiny_dir, tmp_path):
    model = lmxray.load(str(tiny_dir), device="cpu")
    forwards = []
    model.hf.register_forward_pre_hook(lambda *_: forwards.append(1))
    plan = CapturePlan(per_head=True, n_values=None)
    store = TraceStore(tmp_path)
    record, traced, hit = trace_cached(store, model, "abcab cab", plan)
    assert (hit, len(forwards)) == (False, 1)
    again, cached, hit = trace_cached(store, model, "abcab cab", plan)
    assert (hit, len(forwards), again.run_id) == (True, 1, record.run_id)
    assert_same_trace(cached, traced)
    assert np.array_equal(cached.attention_heads, traced.attention_heads)
    store.close()
    _, after_restart, hit = trace_cached(TraceStore(tmp_path), model, "abcab cab", plan.to_dict())
    assert (hit, len(forwards)) == (True, 1)
    assert_same_trace(after_restart, traced)
    _, _, hit = trace_cached(TraceStore(tmp_path), model, "abcab cab", CapturePlan())
    assert (hit, len(forwards)) == (False, 2), "another plan is another run"
    _, _, hit = trace_cached(TraceStore(tmp_path), model, "abcab cab", plan, model_id="d" * 64)
    assert (hit, len(forwards)) == (False, 3), "the model id given is the one keyed on"
    ids = model.encode("abcab cab")
    record, by_ids, hit = trace_cached(TraceStore(tmp_path), model, ids, plan, position=-2)
    assert (hit, len(forwards), record.prompt) == (False, 4, by_ids.prompt)
