"""A sweep records each pair's prompts (parts, pairs.parquet, pairs.csv) and the server hands them back, with the
served model that traces them; a run folder from before recorded prompts reads back without them, with a note."""

from __future__ import annotations

import csv
import json

import pyarrow.parquet as pq
import pytest
from cli_helpers import run as run_cli
from server_helpers import assert_matches, assert_user_error, serving

from lmxray.experiments.sweep import ROWS_SCHEMA
from lmxray.server.api_experiments import served_spec
from lmxray.server.schemas import SweepPairOut
from lmxray.views.experiments_pair import NOT_RECORDED, sweep_pair_view

# prompts a CSV or a path would trip on: commas, quotes, a newline, a slash in an id, non-ASCII text
PAIRS = [
    {"id": "plain", "category": "cap", "intended": "Paris is the capital. The capital is",
     "contradictory": "Rome is the capital. The capital is", "expected": "Paris"},
    {"id": "odd/one", "category": "cap", "intended": 'He said, "yes",\nthen left',
     "contradictory": "Él dijo «no», y se fue", "expected": None},
    {"id": "third", "category": "sci", "intended": "water is wet", "contradictory": "water is dry"},
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def swept(runs, tiny_dir, tmp_path_factory):
    """A CLI sweep of PAIRS into runs/sw (batches of 2, so the parts hold pairs of both batches)."""
    pairs = tmp_path_factory.mktemp("data") / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({k: v for k, v in p.items() if v is not None}) + "\n" for p in PAIRS))
    from lmxray.cli import main  # a module fixture cannot take capsys: its output is not read

    assert main(["sweep", str(pairs), "--model", str(tiny_dir), "--out", str(runs / "sw"), "--batch-size", "2"]) == 0
    return runs / "sw"


def test_the_run_folder_records_each_pairs_prompts_as_given(swept):
    by_id = {p["id"]: p for p in PAIRS}
    table = pq.read_table(swept / "pairs.parquet").to_pylist()
    assert [r["id"] for r in table] == [p["id"] for p in PAIRS]
    for row in table:
        given = by_id[row["id"]]
        assert (row["intended"], row["contradictory"], row["expected"]) == \
            (given["intended"], given["contradictory"], given.get("expected")), f"pair {row['id']}: {row}"
    with open(swept / "pairs.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["intended"], r["contradictory"]) for r in rows] == [(p["intended"], p["contradictory"]) for p in PAIRS]
    parts = [r for path in sorted((swept / "parts").glob("part-*.parquet")) for r in pq.read_table(path).to_pylist()]
    assert len(parts) == 3 * 3  # three pairs, three layers each: every stored row carries its pair's prompts
    assert all((r["intended"], r["contradictory"]) == (by_id[r["id"]]["intended"], by_id[r["id"]]["contradictory"])
               for r in parts)
    assert json.loads((swept / "run.json").read_text())["schema"] == ROWS_SCHEMA == 3


def test_a_folder_of_the_previous_layout_is_refused_until_fresh(capsys, swept, tiny_dir, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps(PAIRS[0]) + "\n")
    folder = tmp_path / "old"
    assert run_cli(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder)[0] == 0
    manifest = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**manifest, "schema": 2}))  # as the sweep wrote it before prompts
    code, _, err = run_cli(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder)
    assert code == 2 and "layout 2" in err and "layout 3" in err and "--fresh" in err, err
    code, _, err = run_cli(capsys, "sweep", pairs, "--model", tiny_dir, "--out", folder, "--fresh")
    assert code == 0 and "1 pairs computed, 0 resumed" in err, err
    assert pq.read_table(folder / "pairs.parquet").column("intended").to_pylist() == [PAIRS[0]["intended"]]


def test_the_pair_view_reads_one_pairs_prompts_and_the_runs_model(swept, tiny_dir):
    v = sweep_pair_view(swept, "odd/one")
    assert (v.id, v.category, v.model, v.align, v.recorded, v.note) == ("odd/one", "cap", str(tiny_dir), "tokens", True, None)
    assert (v.intended, v.contradictory, v.expected) == (PAIRS[1]["intended"], PAIRS[1]["contradictory"], None)
    assert sweep_pair_view(swept, "plain").expected == "Paris"
    assert sweep_pair_view(swept, "nope") is None


def test_the_api_answers_a_pairs_prompts_with_the_served_model(runs, swept, tiny_dir):
    with serving(runs, [tiny_dir]) as client:
        for pair in PAIRS:
            r = client.get(f"/api/experiments/sw/pairs/{pair['id']}")
            assert r.status_code == 200, r.text
            body = r.json()
            assert_matches(SweepPairOut, body)
            expected = sweep_pair_view(swept, pair["id"]).to_dict()
            assert body == {**expected, "run": "sw", "served": str(tiny_dir)}
            assert (body["intended"], body["contradictory"]) == (pair["intended"], pair["contradictory"])
        assert_user_error(client.get("/api/experiments/sw/pairs/nope"), 404, "no pair 'nope'")
        assert_user_error(client.get("/api/experiments/none/pairs/plain"), 404, "no experiment")
    with serving(runs, ["random:" + str(tiny_dir)]) as client:  # pretrained weights are not served here
        assert client.get("/api/experiments/sw/pairs/plain").json()["served"] is None


def test_a_run_from_before_recorded_prompts_says_how_to_record_them(runs, swept, tiny_dir):
    old = runs / "old"
    old.mkdir()
    for name in ("run.json", "summary.json"):
        (old / name).write_bytes((swept / name).read_bytes())
    table = pq.read_table(swept / "pairs.parquet")
    pq.write_table(table.drop_columns(["intended", "contradictory"]), old / "pairs.parquet")  # as layout 2 wrote it
    v = sweep_pair_view(old, "plain")
    assert (v.recorded, v.intended, v.contradictory, v.expected, v.note) == (False, None, None, "Paris", NOT_RECORDED)
    assert "--fresh" in v.note
    with serving(runs, [tiny_dir]) as client:
        body = client.get("/api/experiments/old/pairs/plain").json()
        assert_matches(SweepPairOut, body)
        assert body["recorded"] is False and body["note"] == NOT_RECORDED and body["intended"] is None


def test_the_served_spec_is_the_same_model_named_any_way(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (tmp_path / "link").symlink_to(model)
    specs = ("smollm2", str(tmp_path / "link"), "random:" + str(model))
    assert served_spec("smollm2", specs) == "smollm2"
    assert served_spec(str(model), specs) == str(tmp_path / "link")  # the same folder through a link
    assert served_spec(f"random:{model}@seed0", specs) == "random:" + str(model)  # the server's seed is 0
    assert served_spec(f"random:{model}@seed1", specs) is None
    assert served_spec(str(tmp_path / "elsewhere"), specs) is None
    assert served_spec("random:smollm2@seed0", ("smollm2",)) is None  # random weights are not the pretrained ones
