"""Sweeps on a tiny model: numbers against HF eager attention, batching, kill-and-resume, CLI output and errors."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from lmxray.analysis.divergence import differing_spans
from lmxray.experiments.datasets import (SHIPPED_LENGTH_MATCHED_PAIRS, SHIPPED_PAIR_SETS, SHIPPED_PAIRS, Pair,
                                         pair_source, read_pairs)
from lmxray.experiments.sweep import ROWS_SCHEMA, LaunchedBatch, collect_batch, sweep_batch
from lmxray.models.loader import from_hf
from cli_helpers import assert_user_error, run
from tiny_models import BosTokenizer, tiny_model

EAGER_TOL = 1e-5  # sweep JS / shares vs a direct computation from HF eager output_attentions
BATCH_TOL = 1e-6  # a pair traced in a padded batch vs alone
PAIRS = [
    Pair("a", "cap", "Paris is it. The capital is", "Rome is it. The capital is", "P"),
    Pair("b", "cap", "hello there world", "hi", "x", (0, -1)),
    Pair("c", "sci", "water is wet and cold", "water is dry", None),
]


@pytest.fixture(scope="module")
def tiny():
    return from_hf(tiny_model("llama"), BosTokenizer(), "tiny-llama")


def encode(model, pairs):
    return [(model.encode(p.intended), model.encode(p.contradictory)) for p in pairs]


def column(table, name):
    return np.asarray(table.column(name).to_pylist(), dtype=float)


def eager_rows(model, prompt: str) -> np.ndarray:
    """Prediction-position attention per layer from HF eager output_attentions, summed over heads, normalised."""
    eager = copy.deepcopy(model.hf)
    eager.set_attn_implementation("eager")
    ids = torch.tensor([model.encode(prompt)])
    with torch.no_grad():
        attentions = eager(ids, output_attentions=True).attentions
    rows = torch.stack(attentions)[:, 0, :, -1].sum(1).double().numpy()  # [layer, k_pos]
    return rows / rows.sum(-1, keepdims=True)


def direct_js(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """JS divergence in bits, written out term by term (independent of lmxray.analysis)."""
    out = []
    for a, b in zip(p, q):
        m = (a + b) / 2
        kl = lambda x: sum(xi * np.log2(xi / mi) for xi, mi in zip(x, m) if xi > 0)  # noqa: E731
        out.append(0.5 * kl(a) + 0.5 * kl(b))
    return np.array(out)


def units_by_hand(a_ids, b_ids, p, q):
    """Rows summed per aligned unit, written out from difflib's opcodes (independent of lmxray.analysis)."""
    import difflib

    up, uq = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a_ids, b_ids, autojunk=False).get_opcodes():
        if tag == "equal":
            up += [p[:, i] for i in range(i1, i2)]
            uq += [q[:, j] for j in range(j1, j2)]
        else:
            up.append(p[:, i1:i2].sum(1))
            uq.append(q[:, j1:j2].sum(1))
    return np.stack(up, 1), np.stack(uq, 1)


@pytest.mark.parametrize("how", ["tokens", "start", "end"])
def test_sweep_rows_match_eager_attention(tiny, how):
    table = sweep_batch(tiny, PAIRS, encode(tiny, PAIRS), how)
    n_layers = tiny.info.n_layers
    assert table.num_rows == len(PAIRS) * n_layers
    for k, pair in enumerate(PAIRS):
        p, q = eager_rows(tiny, pair.intended), eager_rows(tiny, pair.contradictory)
        width = max(p.shape[1], q.shape[1])
        pad = lambda r: np.pad(r, [(0, 0), (0, width - r.shape[1]) if how == "start" else (width - r.shape[1], 0)])  # noqa: E731
        aligned = units_by_hand(tiny.encode(pair.intended), tiny.encode(pair.contradictory), p, q) \
            if how == "tokens" else (pad(p), pad(q))
        rows = slice(k * n_layers, (k + 1) * n_layers)
        for name, ref in (("js", direct_js(*aligned)), ("bos_share_intended", p[:, 0]),
                          ("bos_share_contradictory", q[:, 0])):
            drift = float(np.abs(column(table, name)[rows] - ref).max())
            assert drift <= EAGER_TOL, f"pair {pair.id}, align {how}: {name} drifts {drift:.3e} from eager"
        logits = tiny.logits(pair.intended)[-1]
        prob = float(torch.softmax(logits, -1).max())
        got = table.column("prob_intended")[rows.start].as_py()
        assert abs(got - prob) <= EAGER_TOL, f"pair {pair.id}: top-1 prob {got} vs untraced {prob}"
    share = column(table, "expected_share_intended")[n_layers:2 * n_layers]
    p = eager_rows(tiny, PAIRS[1].intended)
    assert np.abs(share - (p[:, 0] + p[:, -1])).max() <= EAGER_TOL


def test_batched_equals_one_at_a_time(tiny):
    together = sweep_batch(tiny, PAIRS, encode(tiny, PAIRS), "tokens")
    alone = [sweep_batch(tiny, [p], encode(tiny, [p]), "tokens") for p in PAIRS]
    for name in ("js", "bos_share_intended", "bos_share_contradictory", "prob_intended", "prob_contradictory"):
        single = np.concatenate([column(t, name) for t in alone])
        drift = float(np.abs(column(together, name) - single).max())
        assert drift <= BATCH_TOL, f"{name}: batched drifts {drift:.3e} from one-at-a-time"
    assert together.column("top1_intended").to_pylist() == sum((t.column("top1_intended").to_pylist() for t in alone), [])


def test_pair_rows_record_lengths_and_differing_spans(tiny):
    table = sweep_batch(tiny, PAIRS, encode(tiny, PAIRS), "tokens").to_pydict()
    first = {pid: table["id"].index(pid) for pid in ("a", "b", "c")}
    for pair in PAIRS:
        i, (a, b) = first[pair.id], encode(tiny, [pair])[0]
        assert (table["n_tokens_intended"][i], table["n_tokens_contradictory"][i]) == (len(a), len(b))
        assert table["length_matched"][i] is (len(a) == len(b))
    i = first["c"]  # "water is wet and cold" against "water is dry" (the tiny tokenizer splits characters)
    a, b = encode(tiny, [PAIRS[2]])[0]
    assert table["n_shared_tokens"][i] == len(a) - sum(len(x) for x, _ in differing_spans(a, b))
    for side, prompt in (("intended", PAIRS[2].intended), ("contradictory", PAIRS[2].contradictory)):
        spans = table[f"differs_{side}"][i].split(" … ")
        assert spans and all(span in prompt for span in spans), f"{side}: {spans} are not parts of {prompt!r}"


def test_inserted_token_without_mass_gives_zero_js_through_a_padded_batch(tiny):
    """Constructed prompts and attention rows: b is a with one token inserted that receives no mass."""
    a = tiny.encode("the value is big")
    extra = next(t for t in tiny.encode("xyzqk") if t not in a)
    b = a[:2] + [extra] + a[2:]
    n_layers, width = 3, len(b)
    rng = np.random.default_rng(1)
    p = rng.random((n_layers, len(a))) * 9  # head-summed rows sum to n_heads
    q = np.insert(p, 2, 0.0, axis=1)
    rows = np.zeros((2, n_layers, width))
    rows[0, :, width - len(a):], rows[1] = p, q  # left padding
    launched = LaunchedBatch([Pair("ins", "c", "x", "y")], [a, b], np.array([width - len(a), 0]),
                             torch.tensor(rows), torch.tensor([0.5, 0.5]), torch.tensor([1, 1]), None)
    table = collect_batch(tiny, launched, "tokens")
    js = column(table, "js")
    assert js.shape == (n_layers,) and np.abs(js).max() <= 1e-12, f"JS {js} for a token without mass"
    assert column(collect_batch(tiny, launched, "start"), "js").min() > 0.01, "start alignment no longer shifts"
    assert table.column("length_matched").to_pylist() == [False] * n_layers


def write_pairs(path: Path, n: int) -> Path:
    rows = [{"id": f"p{i:03d}", "category": ["alpha", "beta", "gamma"][i % 3], "intended": f"the value {i} is big",
             "contradictory": f"the value {i} is bad" if i % 2 else f"a value {i * 7} was small", "expected": "x"}
            for i in range(n)]  # odd pairs keep the length (the tiny tokenizer splits characters)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sweep_cli_writes_tables_figures_and_summary(capsys, tiny_dir, tmp_path):
    pairs, folder = write_pairs(tmp_path / "pairs.jsonl", 7), tmp_path / "run"
    code, stdout, _ = run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder, "--batch-size", 3)
    assert code == 0
    for text in ("sweep of 7 pairs", "alpha", "gamma", "all", "peak L", "BOS peak", "--align tokens",
                 "length differs", "Mean JS of the"):
        assert text in stdout, f"{text!r} missing from the sweep output"
    for name in ("layers.parquet", "layers.csv", "pairs.parquet", "pairs.csv", "summary.csv", "summary.parquet",
                 "bos_profile.csv", "summary.md", "summary.json", "divergence_by_category.png", "bos_profile.png"):
        assert (folder / name).is_file(), f"{name} was not written"
    layers, per_pair = pq.read_table(folder / "layers.parquet"), pq.read_table(folder / "pairs.parquet")
    assert layers.num_rows == 7 * 3 and per_pair.num_rows == 7
    assert per_pair.column("id").to_pylist() == [f"p{i:03d}" for i in range(7)], "pairs come back in dataset order"
    js = column(layers, "js").reshape(7, 3)
    assert np.allclose(column(per_pair, "mean_js"), js.mean(1)) and np.allclose(column(per_pair, "peak_js"), js.max(1))
    code, again, _ = run(capsys, "sweep", "--summary", folder, "--json")
    data = json.loads(again)
    assert code == 0 and data["pairs"] == 7 and [c["category"] for c in data["categories"]] == ["alpha", "beta", "gamma", "all"]
    assert data["categories"][0]["n_pairs"] == 3
    matched = per_pair.column("length_matched").to_pylist()
    split = data["length_split"]
    assert (split["n_matched"], split["n_mismatched"]) == (sum(matched), 7 - sum(matched))
    groups = {g["category"]: g["n_pairs"] for g in data["length_groups"]}
    assert groups == {name: n for name, n in (("same length", sum(matched)), ("length differs", 7 - sum(matched))) if n}
    summary = pq.read_table(folder / "summary.parquet").to_pydict()
    assert summary["kind"][-len(groups):] == ["length"] * len(groups)


def test_sweep_resumes_and_fresh_starts_over(capsys, tiny_dir, tmp_path):
    pairs, folder = write_pairs(tmp_path / "pairs.jsonl", 6), tmp_path / "run"
    assert run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder, "--limit", 4)[0] == 0
    code, _, err = run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder)
    assert code == 0 and "2 pairs computed, 4 resumed" in err, err
    assert pq.read_table(folder / "pairs.parquet").num_rows == 6
    code, _, err = run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder, "--fresh")
    assert code == 0 and "6 pairs computed, 0 resumed" in err, err


def test_sigkill_and_resume_give_the_same_tables(capsys, tiny_dir, tmp_path):
    """A real sweep in a subprocess is SIGKILLed mid-run; rerunning gives exactly the uninterrupted tables."""
    pairs = write_pairs(tmp_path / "pairs.jsonl", 40)
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", reference, "--batch-size", 1)[0] == 0
    args = [sys.executable, "-c", "import sys; from lmxray.cli import main; sys.exit(main())", "sweep", str(pairs), "--model", str(tiny_dir), "--out", str(killed),
            "--batch-size", "1", "--json"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while len(list((killed / "parts").glob("part-*.parquet"))) < 3 and time.monotonic() < deadline:
        assert proc.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list((killed / "parts").glob("part-*.parquet")))
    assert 3 <= done < 40, f"the kill landed after {done} of 40 batches"
    assert not (killed / "pairs.parquet").exists(), "the killed run got to its report"
    code, _, err = run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", killed, "--batch-size", 1)
    assert code == 0 and "40 pairs computed" not in err, err
    for name in ("layers.parquet", "pairs.parquet", "summary.parquet", "bos_profile.parquet"):
        a, b = pq.read_table(reference / name), pq.read_table(killed / name)
        assert a.num_rows == b.num_rows, f"{name}: {b.num_rows} rows after resuming, {a.num_rows} uninterrupted"
        assert a.equals(b), f"{name} differs between the resumed and the uninterrupted run"


def test_run_folder_of_the_old_layout_is_refused_and_fresh_rebuilds_it(capsys, tiny_dir, tmp_path):
    pairs, folder = write_pairs(tmp_path / "pairs.jsonl", 2), tmp_path / "run"
    assert run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder)[0] == 0
    manifest = json.loads((folder / "run.json").read_text())
    del manifest["schema"]  # as lmxray wrote it before the rows had length columns
    manifest["settings"] = {"align": "start"}
    (folder / "run.json").write_text(json.dumps(manifest))
    summary = json.loads((folder / "summary.json").read_text())
    del summary["schema"]
    (folder / "summary.json").write_text(json.dumps(summary))
    before = snapshot(folder)
    assert_user_error(capsys, ["sweep", pairs, "--model", tiny_dir, "--out", folder], "layout 1",
                      f"layout {ROWS_SCHEMA}", "--fresh")
    assert_user_error(capsys, ["sweep", "--summary", folder], "another lmxray version", "--fresh")
    assert snapshot(folder) == before, "a refused command changed the run folder"
    code, _, err = run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder, "--fresh")
    assert code == 0 and "2 pairs computed, 0 resumed" in err, err
    assert json.loads((folder / "run.json").read_text())["schema"] == ROWS_SCHEMA


def test_stray_temporary_part_is_ignored_and_removed(capsys, tiny_dir, tmp_path):
    pairs, folder = write_pairs(tmp_path / "pairs.jsonl", 3), tmp_path / "run"
    assert run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder, "--limit", 2)[0] == 0
    stray = folder / "parts" / ".tmp-part-000009.parquet.abc"
    stray.write_bytes(b"PAR1 half a file")
    code, _, err = run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder)
    assert code == 0 and "1 pairs computed, 2 resumed" in err and not stray.exists()


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_folder_of_another_model_or_command_is_refused_untouched(capsys, tiny_dir, tmp_path):
    pairs, folder = write_pairs(tmp_path / "pairs.jsonl", 3), tmp_path / "run"
    assert run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder)[0] == 0
    before = snapshot(folder)
    assert_user_error(capsys, ["sweep", pairs, "--model", "random:" + str(tiny_dir), "--out", folder], "belongs to")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("some text\n")
    assert_user_error(capsys, ["profile", "--corpus", f"x={corpus}", "--model", tiny_dir, "--out", folder], "lmxray sweep")
    assert_user_error(capsys, ["sweep", pairs, "--model", tiny_dir, "--out", folder, "--align", "end"],
                      "other settings", "--fresh")
    assert snapshot(folder) == before, "a refused command changed the run folder"
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    assert_user_error(capsys, ["sweep", pairs, "--model", tiny_dir, "--out", other], "not an lmxray run folder")
    assert (other / "notes.txt").read_text() == "keep me" and len(list(other.iterdir())) == 1


@pytest.mark.parametrize("name, text, words", [
    ("bad.jsonl", '{"id": "a", "category": "c", "intended": "x", "contradictory": "y"}\n{"id": "b", oops}\n',
     ["bad.jsonl:2", "not valid JSON"]),
    ("missing.jsonl", '\n{"id": "a", "category": "c", "intended": "x"}\n', ["missing.jsonl:2", "'contradictory'"]),
    ("dup.jsonl", '{"id": "a", "category": "c", "intended": "x", "contradictory": "y"}\n'
                  '{"id": "a", "category": "c", "intended": "x", "contradictory": "z"}\n',
     ["dup.jsonl:2", "duplicate id 'a'", "line 1"]),
    ("typo.jsonl", '{"id": "a", "category": "c", "intended": "x", "contradictroy": "y"}\n', ["typo.jsonl:1", "unknown"]),
    ("pos.jsonl", '{"id": "a", "category": "c", "intended": "x", "contradictory": "y", "expected_positions": "0"}\n',
     ["pos.jsonl:1", "expected_positions"]),
    ("bad.csv", 'id,category,intended,contradictory\na,c,x,y\nb,c,,y\n', ["bad.csv:3", "'intended'"]),
    ("empty.jsonl", "\n\n", ["no pairs"]),
    ("latin1.jsonl", None, ["not UTF-8"]),
    ("pairs.txt", "id\n", ["unsupported"]),
])
def test_bad_pair_files_are_one_line_errors(capsys, tiny_dir, tmp_path, name, text, words):
    path = tmp_path / name
    if text is None:
        path.write_bytes(b'{"id": "caf\xe9"}\n')
    else:
        path.write_text(text)
    folder = tmp_path / "run"
    assert_user_error(capsys, ["sweep", path, "--model", tiny_dir, "--out", folder], *words)
    assert not folder.exists(), "a refused sweep created its run folder"


def test_missing_and_unreadable_inputs(capsys, tiny_dir, tmp_path):
    assert_user_error(capsys, ["sweep", tmp_path / "nope.jsonl", "--model", tiny_dir], "does not exist")
    assert_user_error(capsys, ["sweep", "--summary", tmp_path], "no sweep summary")
    assert_user_error(capsys, ["sweep", "--align", "middle", "--model", tiny_dir, "--out", tmp_path / "r"], "alignment")
    assert_user_error(capsys, ["sweep", "--batch-size", 0, "--model", tiny_dir, "--out", tmp_path / "r"], "batch size")
    out_of_range = tmp_path / "far.jsonl"
    out_of_range.write_text('{"id": "a", "category": "c", "intended": "ab", "contradictory": "y", '
                            '"expected_positions": [0, 9]}\n')
    assert_user_error(capsys, ["sweep", out_of_range, "--model", tiny_dir, "--out", tmp_path / "r2"],
                      "pair 'a'", "out of range")
    assert not (tmp_path / "r2").exists(), "a refused sweep created its run folder"


def test_pair_longer_than_the_context_is_named_and_leaves_no_folder(capsys, tiny_dir, tmp_path):
    long_pair = tmp_path / "long.jsonl"
    long_pair.write_text(json.dumps({"id": "far", "category": "c", "intended": "x" * 100, "contradictory": "y"}) + "\n")
    folder = tmp_path / "run"
    code, _, err = run(capsys, "sweep", long_pair, "--model", tiny_dir, "--out", folder)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: pair 'far': "), repr(err)
    assert "longer than the model's context" in err and not folder.exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_run_folder_that_cannot_be_created(capsys, tiny_dir, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 2)
    assert_user_error(capsys, ["sweep", pairs, "--model", tiny_dir, "--out", "/proc/lmxray-run"], "cannot create")


def test_summary_of_something_that_is_not_a_run(capsys, tmp_path):
    a_file = tmp_path / "pairs.jsonl"
    a_file.write_text("{}\n")
    assert_user_error(capsys, ["sweep", "--summary", a_file], "is a file, not a run folder")
    assert_user_error(capsys, ["sweep", "--summary", tmp_path / "nope"], "does not exist")
    (tmp_path / "summary.json").write_bytes(b"\x9d\xff binary")
    assert_user_error(capsys, ["profile", "--summary", tmp_path], "cannot read")


def test_shipped_sets_by_name():
    assert pair_source(None) == SHIPPED_PAIRS and pair_source("contexts") == SHIPPED_PAIRS
    assert pair_source("length-matched") == SHIPPED_LENGTH_MATCHED_PAIRS and pair_source("x.jsonl") == Path("x.jsonl")
    assert all(path.is_file() for path in SHIPPED_PAIR_SETS.values())


def test_length_matched_set_is_complete():
    pairs = read_pairs(SHIPPED_LENGTH_MATCHED_PAIRS)
    categories = {p.category for p in pairs}
    assert len(pairs) >= 100 and len(categories) >= 5, f"{len(pairs)} pairs in {sorted(categories)}"
    assert all(p.expected for p in pairs) and all(p.intended != p.contradictory for p in pairs)
    assert not {p.id for p in pairs} & {p.id for p in read_pairs(SHIPPED_PAIRS)}, "ids shared with the contexts set"


@pytest.mark.builtin
def test_length_matched_set_has_equal_token_counts_on_the_builtin_tokenizer():
    import lmxray

    model = lmxray.load("smollm2")
    unequal = [(p.id, len(model.encode(p.intended)), len(model.encode(p.contradictory)))
               for p in read_pairs(SHIPPED_LENGTH_MATCHED_PAIRS)
               if len(model.encode(p.intended)) != len(model.encode(p.contradictory))]
    assert not unequal, f"pairs whose prompts differ in token count on smollm2: {unequal}"


def test_shipped_pair_set_is_complete():
    pairs = read_pairs(Path(__file__).parents[1] / "src/lmxray/experiments/data/pairs.jsonl")
    categories = {p.category for p in pairs}
    assert len(pairs) >= 100 and len(categories) >= 5, f"{len(pairs)} pairs in {sorted(categories)}"
    assert {"capital_cities", "science_facts", "entity_completion", "memorised_phrases", "dates_history",
            "code"} <= categories
    assert all(p.expected for p in pairs) and all(p.intended != p.contradictory for p in pairs)


@pytest.mark.builtin
def test_shipped_sweep_on_the_builtin_model(capsys, tmp_path):
    import lmxray

    folder = tmp_path / "run"
    code, stdout, _ = run(capsys, "sweep", "--out", folder, "--limit", 8, "--json")
    assert code == 0
    data = json.loads(stdout)
    assert (data["model"], data["pairs"], data["layers"]) == ("smollm2", 8, 30)
    assert data["categories"][-1]["category"] == "all" and data["categories"][-1]["n_pairs"] == 8
    per_pair = pq.read_table(folder / "pairs.parquet").to_pydict()
    france = per_pair["id"].index("capital_cities-00")
    assert per_pair["top1_intended"][france] == " Paris" and per_pair["hit_intended"][france] is True
    untraced = torch.softmax(lmxray.load("smollm2").logits(read_pairs(
        Path(__file__).parents[1] / "src/lmxray/experiments/data/pairs.jsonl")[0].intended)[-1], -1).max()
    drift = abs(per_pair["prob_intended"][france] - float(untraced))
    assert drift <= EAGER_TOL, f"smollm2: sweep confidence drifts {drift:.3e} from the untraced forward"
    assert "capital_cities" in (folder / "summary.md").read_text()


def test_run_folder_files_are_readable_by_others(capsys, tiny_dir, tmp_path):
    pairs, folder = write_pairs(tmp_path / "pairs.jsonl", 2), tmp_path / "run"
    assert run(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder)[0] == 0
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.rglob("*") if p.is_file()}
    assert modes and all(m == 0o644 for m in modes.values()), modes
