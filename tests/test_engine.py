"""Engines without a cluster: the shared job loop (ids, duplicates, order, resume), engine options and their errors,
the driver's weightless model card, and a model spread over two devices by a device map (capture stays exact)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from lmxray.engines import Item, LocalEngine, ModelRef, Output, identity, make_engine, run_job
from lmxray.engines.job import store_output
from lmxray.engines.placement import parse_device_map
from lmxray.errors import LmxrayError
from lmxray.experiments.batch import BatchJob
from lmxray.experiments.datasets import Pair, Prompt, Sample
from lmxray.experiments.profile import ProfileJob
from lmxray.experiments.store import RunStore
from lmxray.experiments.sweep import SweepJob
from cli_helpers import assert_user_error, run

SPLIT_TOL = 1e-6  # rows of a model spread over two devices vs the same model in one piece
PAIRS = [Pair("a", "cap", "Paris is it. The capital is", "Rome is it. The capital is", "P"),
         Pair("b", "cap", "hello there world", "hi", "x", (0, -1)),
         Pair("c", "sci", "water is wet and cold", "water is dry")]
# the embedding, layer 1 and the final norm are read from disk at each forward pass, the rest stays on the CPU
SPLIT = {"model.embed_tokens": "disk", "model.layers.0": "cpu", "model.layers.1": "disk", "model.layers.2": "cpu",
         "model.norm": "disk", "model.rotary_emb": "cpu", "lm_head": "cpu"}


class Recorded:
    """A job whose batches are tables of their ids, recording the batches it was given."""

    def __init__(self):
        self.batches = []

    def launch(self, model, items):
        self.batches.append([it.id for it in items])
        return items

    def collect(self, model, items):
        return Output(pa.table({"id": [it.id for it in items], "size": [it.size for it in items]}),
                      {f"files/{it.id}.txt": it.id.encode() for it in items})


def begun(tmp_path, name="run") -> RunStore:
    store = RunStore(tmp_path / name, "test", "m", {})
    store.begin({"name": "m", "sha256": None, "dtype": "float32"})
    return store


def test_longest_items_run_first_each_batch_one_part_with_its_files(tmp_path):
    store, job = begun(tmp_path), Recorded()
    items = [Item(f"i{n}", size, None) for n, size in enumerate([3, 9, 1, 9, 5])]
    seen = []
    stats = run_job(LocalEngine(), job, None, items, store, 2, lambda done, total: seen.append((done, total)))
    assert job.batches == [["i1", "i3"], ["i4", "i0"], ["i2"]]  # by size, ties in file order
    assert (stats["items"], stats["computed"], stats["resumed"]) == (5, 5, 0)
    assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)]
    parts = sorted((tmp_path / "run" / "parts").glob("part-*.parquet"))
    assert [pq.read_table(p).column("id").to_pylist() for p in parts] == job.batches
    assert sorted(f.name for f in (tmp_path / "run" / "files").iterdir()) == [f"i{n}.txt" for n in range(5)]


def test_a_rerun_computes_only_what_is_missing(tmp_path):
    store, job = begun(tmp_path), Recorded()
    items = [Item(f"i{n}", n, None) for n in range(5)]
    with pytest.raises(KeyboardInterrupt):  # stopped after the first stored batch
        run_job(LocalEngine(), job, None, items, store, 2,
                lambda done, total: (_ for _ in ()).throw(KeyboardInterrupt) if done else None)
    again = Recorded()
    stats = run_job(LocalEngine(), again, None, items, store, 2)
    assert (stats["computed"], stats["resumed"]) == (3, 2) and again.batches == [["i2", "i1"], ["i0"]]
    assert sorted(store.read().column("id").to_pylist()) == [f"i{n}" for n in range(5)]  # each id once


def test_a_batch_delivered_twice_adds_nothing_and_an_overlap_only_its_new_rows(tmp_path):
    store, stored = begun(tmp_path), set()
    first = Output(pa.table({"id": ["a", "a", "b"], "layer": [0, 1, 0]}))
    assert store_output(store, first, stored) == 2
    assert store_output(store, first, stored) == 0  # a retried batch that arrived twice
    overlap = Output(pa.table({"id": ["b", "c", "c"], "layer": [0, 0, 1]}))
    assert store_output(store, overlap, stored) == 1
    table = store.read()
    assert list(zip(table.column("id").to_pylist(), table.column("layer").to_pylist())) == [
        ("a", 0), ("a", 1), ("b", 0), ("c", 0), ("c", 1)]


def test_engine_options_are_checked_before_anything_loads(monkeypatch):
    ref = ModelRef("smollm2")
    for kwargs, words in [({"name": "spark"}, "unknown engine"),
                          ({"name": "local", "address": "10.0.0.1:6379"}, "--address only apply to --engine ray"),
                          ({"name": "local", "workers": 2, "gpus_per_worker": 1}, "--workers, --gpus-per-worker"),
                          ({"name": "ray", "workers": 0}, "--workers must be at least 1"),
                          ({"name": "ray", "gpus_per_worker": -1}, "--gpus-per-worker must be 0 or more")]:
        name = kwargs.pop("name")
        with pytest.raises(LmxrayError, match=words):
            make_engine(name, ref, **kwargs)
    import lmxray.engines.ray_engine as ray_engine

    monkeypatch.setattr(ray_engine.importlib.util, "find_spec", lambda name: None)  # neither Ray nor accelerate
    with pytest.raises(LmxrayError, match=r"needs Ray, which is not installed — pip install 'lmxray\[ray\]'"):
        make_engine("ray", ref)
    with pytest.raises(LmxrayError, match=r"--device-map needs the accelerate package.*lmxray\[ray\]"):
        make_engine("local", ModelRef("smollm2", device_map="auto"))


def test_engine_errors_on_the_command_line(capsys, tiny_dir, tmp_path, monkeypatch):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"id": "a", "category": "c", "intended": "x y", "contradictory": "y"}) + "\n")
    out = tmp_path / "run"
    assert_user_error(capsys, ["sweep", pairs, "--model", tiny_dir, "--out", out, "--workers", 2], "--workers",
                      "--engine ray", out_file=out)
    assert_user_error(capsys, ["profile", "--model", tiny_dir, "--out", out, "--engine", "spark"], "unknown engine",
                      out_file=out)
    assert_user_error(capsys, ["batch", pairs, "--model", tiny_dir, "--out", out, "--device-map", "everywhere"],
                      "--device-map", out_file=out)
    missing = torch.cuda.device_count()  # one GPU index past the last this machine has
    assert_user_error(capsys, ["sweep", pairs, "--model", tiny_dir, "--out", out, "--device-map",
                               json.dumps({"": missing})], f"on {missing}", "cpu, disk", out_file=out)
    for spec in (tiny_dir, f"random:{tiny_dir}"):  # read to the devices / made on the host, then spread
        assert_user_error(capsys, ["sweep", pairs, "--model", spec, "--out", out, "--device-map",
                                   json.dumps({"model.layers": "cpu"})], "places no module that holds model.embed_tokens",
                          out_file=out)
        assert_user_error(capsys, ["sweep", pairs, "--model", spec, "--out", out, "--device-map",
                                   json.dumps({**SPLIT, "model.decoder": "cpu"})], "'model.decoder', which holds no",
                          out_file=out)
    import lmxray.engines.ray_engine as ray_engine

    monkeypatch.setattr(ray_engine.importlib.util, "find_spec", lambda name: None)
    assert_user_error(capsys, ["sweep", pairs, "--model", tiny_dir, "--out", out, "--engine", "ray"],
                      "needs Ray", "lmxray[ray]", out_file=out)


def test_device_maps_parse_to_a_strategy_or_a_module_map():
    assert parse_device_map(None) is None and parse_device_map("auto") == "auto"
    assert parse_device_map('{"model.layers.0": 0, "": "cpu"}') == {"model.layers.0": 0, "": "cpu"}
    for bad in ("everywhere", "[0, 1]", "{}", '{"a": true}', '{"a": 1.5}'):
        with pytest.raises(LmxrayError, match="--device-map"):
            parse_device_map(bad)


def test_the_driver_card_has_the_identity_of_the_loaded_weights_and_none_of_them(tiny_dir):
    for ref in (ModelRef(str(tiny_dir)), ModelRef(str(tiny_dir), init="random", seed=3),
                ModelRef(f"random:{tiny_dir}", seed=4, dtype="bfloat16")):
        card, loaded = ref.card(gpus=0), ref.load()
        assert identity(card) == identity(loaded), ref
        assert card.info == loaded.info and card.max_positions == loaded.max_positions == 64
        assert all(p.device.type == "meta" for p in card.hf.parameters())
        assert card.encode("Paris is") == loaded.encode("Paris is")
    assert ModelRef(str(tiny_dir)).card(gpus=1).info.dtype == "bfloat16"  # auto on a GPU worker


def test_the_card_of_a_type_without_an_adapter_is_found_by_inspection(tmp_path):
    from transformers import AutoModelForCausalLM

    from lmxray.models.tiny import tiny_config
    from tiny_models import tiny_tokenizer

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_config("glm")).save_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    ref = ModelRef(str(tmp_path))
    card, loaded = ref.card(gpus=0), ref.load()
    assert card.spec.inspected and loaded.spec.inspected and identity(card) == identity(loaded)
    assert (card.spec.layers, card.spec.attention, card.spec.unembed) == \
        (loaded.spec.layers, loaded.spec.attention, loaded.spec.unembed)


def rows(table: pa.Table) -> dict[str, np.ndarray]:
    """Numeric and boolean columns as float arrays (lists flattened, None as NaN), keyed by name."""
    out = {}
    for name in table.column_names:
        kind = table.schema.field(name).type
        kind = kind.value_type if pa.types.is_list(kind) else kind
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            values = [x for v in table.column(name).to_pylist() for x in (v if isinstance(v, list) else [v])]
            out[name] = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    return out


def drift(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference; infinite when the missing values (NaN) are not in the same places."""
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return np.inf
    return float(np.nanmax(np.abs(a - b), initial=0.0))


@pytest.mark.parametrize("init", ["pretrained", "random"])
def test_a_model_spread_over_two_devices_gives_the_same_rows(tiny_dir, init, monkeypatch):
    import lmxray.engines.placement as placement

    if init == "pretrained":  # weights go from the files to their devices, never all through the host first
        monkeypatch.setattr(placement, "spread", lambda *a: pytest.fail("a pretrained model was loaded whole"))
    whole = ModelRef(str(tiny_dir), init=init, seed=5).load()
    split = ModelRef(str(tiny_dir), init=init, seed=5, device_map=SPLIT).load()
    offloaded = {name for name, p in split.hf.named_parameters() if p.device.type == "meta"}
    assert any(n.startswith("model.layers.1.") for n in offloaded) and "model.norm.weight" in offloaded
    assert not any(n.startswith("model.layers.0.") for n in offloaded), "the map was not followed"
    assert "model.embed_tokens.weight" in offloaded and split.device == torch.device("cpu"), "inputs go where it runs"
    sweep_items = [Item(p.id, 0, (p, (whole.encode(p.intended), whole.encode(p.contradictory)))) for p in PAIRS]
    samples = [("c", Sample(f"c:{i}", text, "x")) for i, text in enumerate(["int main() {}", "a b c d e f"])]
    profile_items = [Item(s.id, 0, (c, s, whole.tokenizer(s.text)["input_ids"])) for c, s in samples]
    prompt_items = [Item(f"p{i}", 0, Prompt(f"p{i}", p.intended, "x")) for i, p in enumerate(PAIRS)]
    for job, items in ((SweepJob("tokens"), sweep_items), (ProfileJob(16), profile_items),
                       (BatchJob(), prompt_items)):
        a = job.collect(whole, job.launch(whole, items)).table
        b = job.collect(split, job.launch(split, items)).table
        assert a.column("id").to_pylist() == b.column("id").to_pylist()
        for name, values in rows(a).items():
            far = drift(values, rows(b)[name])
            assert far <= SPLIT_TOL, f"{type(job).__name__}.{name}: split model drifts {far:.3e}"


def test_a_catch_all_map_and_tied_embeddings_give_the_same_rows(tmp_path):
    """A map with "" beside inner paths (accelerate places disjoint modules only) on a model whose unembedding
    shares the embedding's weight; splitting that shared weight over two devices is refused in one line."""
    from tiny_models import tiny_model, tiny_tokenizer

    tied = tiny_model("llama")
    tied.config.tie_word_embeddings = True
    tied.tie_weights()
    tied.save_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    nested = {"model.embed_tokens": "disk", "lm_head": "disk", "model.layers.1": "disk", "": "cpu"}
    items = [Item(p.id, 0, Prompt(p.id, p.intended, "x")) for p in PAIRS]
    for init in ("pretrained", "random"):
        whole = ModelRef(str(tmp_path), init=init, seed=2).load()
        split = ModelRef(str(tmp_path), init=init, seed=2, device_map=nested).load()
        assert whole.hf.get_output_embeddings().weight is whole.hf.get_input_embeddings().weight
        assert {n for n, p in split.hf.named_parameters() if p.is_meta} >= {"model.embed_tokens.weight"}
        a, b = (BatchJob().launch(m, items).table for m in (whole, split))
        for name, values in rows(a).items():
            far = drift(values, rows(b)[name])
            assert far <= SPLIT_TOL, f"{init}: batch.{name} of the split tied model drifts {far:.3e}"
        with pytest.raises(LmxrayError, match="lm_head.weight are tied"):
            ModelRef(str(tmp_path), init=init, device_map={"model.embed_tokens": "disk", "": "cpu"}).load()


def test_device_map_on_the_command_line_gives_the_same_sweep(capsys, tiny_dir, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"id": p.id, "category": p.category, "intended": p.intended,
                                         "contradictory": p.contradictory}) + "\n" for p in PAIRS))
    for name, extra in (("whole", []), ("split", ["--device-map", json.dumps(SPLIT)])):
        assert run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", tmp_path / name, *extra)[0] == 0
    a, b = (pq.read_table(tmp_path / name / "layers.parquet") for name in ("whole", "split"))
    far = drift(rows(a)["js"], rows(b)["js"])
    assert far <= SPLIT_TOL, f"sweep JS of the split model drifts {far:.3e}"


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_a_model_spread_over_two_gpus_gives_the_same_rows(tiny_dir):
    """GPU only: blocks on cuda:0 and cuda:1, so tensors cross devices inside the capture."""
    gpus = {"model.embed_tokens": 0, "model.layers.0": 0, "model.layers.1": 1, "model.layers.2": 1,
            "model.norm": 1, "model.rotary_emb": 0, "lm_head": 1}
    whole = ModelRef(str(tiny_dir), device="cuda:0", dtype="float32").load()
    split = ModelRef(str(tiny_dir), dtype="float32", device_map=gpus).load()
    items = [Item(p.id, 0, Prompt(p.id, p.intended, "x")) for p in PAIRS]
    a, b = (BatchJob().launch(m, items).table for m in (whole, split))
    for name, values in rows(a).items():
        far = drift(values, rows(b)[name])
        assert far <= SPLIT_TOL, f"batch.{name}: model over two GPUs drifts {far:.3e}"
