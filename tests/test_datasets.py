"""User data sets: pairs, corpora and prompts from JSONL, CSV and Parquet files, folders of them and datasets
folders, with one-line errors that name the file and the line (or row)."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lmxray.errors import LmxrayError
from lmxray.experiments.datasets import SHIPPED_PAIRS, Pair, read_corpus, read_pairs, read_prompts

PAIR = {"id": "a", "category": "cap", "intended": "Paris is it. The capital is", "contradictory": "Rome. It is",
        "expected": "Paris", "expected_positions": [0, 2]}


def pairs(n: int, start: int = 0) -> list[dict]:
    return [{**PAIR, "id": f"p{i}", "intended": f"{PAIR['intended']} {i}"} for i in range(start, start + n)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_parquet(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def error(fn, *args) -> str:
    with pytest.raises(LmxrayError) as caught:
        fn(*args)
    text = str(caught.value)
    assert "\n" not in text, f"not one line: {text!r}"
    return text


def test_parquet_pairs_equal_the_same_pairs_as_jsonl(tmp_path):
    rows = pairs(3) + [{**PAIR, "id": "plain", "expected": None, "expected_positions": None}]
    from_jsonl = read_pairs(write_jsonl(tmp_path / "p.jsonl", [{k: v for k, v in r.items() if v is not None}
                                                               for r in rows]))
    from_parquet = read_pairs(write_parquet(tmp_path / "p.parquet", rows))
    assert from_parquet == from_jsonl
    assert from_parquet[0] == Pair("p0", "cap", "Paris is it. The capital is 0", "Rome. It is", "Paris", (0, 2))
    assert from_parquet[-1].expected is None and from_parquet[-1].expected_positions is None


def test_a_folder_of_mixed_files_reads_every_pair_in_name_order(tmp_path):
    folder = tmp_path / "sets"
    (folder / "more").mkdir(parents=True)
    write_jsonl(folder / "a.jsonl", pairs(2))
    write_parquet(folder / "more" / "b.parquet", pairs(2, start=2))
    (folder / "c.csv").write_text("id,category,intended,contradictory\np4,cap,x,y\n")
    (folder / "notes.md").write_text("not data")
    (folder / ".hidden.jsonl").write_text("not even JSON")
    assert [p.id for p in read_pairs(folder)] == ["p0", "p1", "p4", "p2", "p3"]  # a.jsonl, c.csv, more/b.parquet


def test_the_shipped_set_reads_the_same_from_a_folder(tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "pairs.jsonl").write_bytes(SHIPPED_PAIRS.read_bytes())
    assert read_pairs(tmp_path / "set") == read_pairs(SHIPPED_PAIRS)


@pytest.mark.parametrize("rows, words", [
    ([{**PAIR, "intended": ""}], ["row 1", "'intended'", "non-empty"]),
    ([PAIR, {k: v for k, v in PAIR.items() if k != "category"}], ["row 2", "'category' is missing"]),
    ([PAIR, PAIR], ["row 2", "duplicate id 'a'", "first at row 1"]),
    ([{**PAIR, "contradictroy": "typo"}], ["row 1", "unknown field"]),
    ([{**PAIR, "expected_positions": ["x"]}], ["row 1", "expected_positions"]),
])
def test_bad_parquet_rows_name_the_file_and_row(tmp_path, rows, words):
    path = write_parquet(tmp_path / "bad.parquet", rows)
    text = error(read_pairs, path)
    for word in [str(path)] + words:
        assert word in text, f"{word!r} not in {text!r}"


def test_errors_in_folders_name_the_file_and_line(tmp_path):
    folder = tmp_path / "sets"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", pairs(2))
    (folder / "b.jsonl").write_text(json.dumps(PAIR) + "\n{oops\n")
    assert f"{folder / 'b.jsonl'}:2: not valid JSON" in error(read_pairs, folder)
    write_jsonl(folder / "b.jsonl", [pairs(1)[0]])
    text = error(read_pairs, folder)
    assert f"{folder / 'b.jsonl'}:1: duplicate id 'p0' (first at {folder / 'a.jsonl'}:1)" in text, text
    (folder / "b.jsonl").unlink()
    (folder / "c.parquet").write_bytes(b"PAR1 but not really")
    assert "not a readable Parquet file" in error(read_pairs, folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no data here")
    assert "holds no .jsonl, .csv or .parquet files" in error(read_pairs, empty)


def test_corpora_from_rows_and_from_text_folders(tmp_path):
    texts = ["def f():\n    return 1", "int main() {}", "x = [1, 2]"]
    rows = [{"text": t, "source": "github"} for t in texts]  # other columns are left alone
    by_jsonl = read_corpus("c", write_jsonl(tmp_path / "c.jsonl", rows))
    by_parquet = read_corpus("c", write_parquet(tmp_path / "c.parquet", rows))
    with open(tmp_path / "c.csv", "w", newline="") as f:
        csv.writer(f).writerows([["text"]] + [[t] for t in texts])
    by_csv = read_corpus("c", tmp_path / "c.csv")
    for samples in (by_jsonl, by_parquet, by_csv):
        assert [s.text for s in samples] == texts and [s.id for s in samples] == ["c:0", "c:1", "c:2"]
    assert [s.where for s in by_parquet] == [f"{tmp_path / 'c.parquet'} row {i}" for i in (1, 2, 3)]
    rows_folder, code_folder = tmp_path / "rows", tmp_path / "code"
    rows_folder.mkdir()
    code_folder.mkdir()
    write_parquet(rows_folder / "part-0.parquet", rows[:2])
    write_jsonl(rows_folder / "part-1.jsonl", rows[2:])
    assert [s.text for s in read_corpus("r", rows_folder)] == texts  # only data files: their rows
    (code_folder / "a.py").write_text(texts[0])
    (code_folder / "b.csv").write_text("a,b\n1,2\n")
    assert [s.text for s in read_corpus("k", code_folder)] == [texts[0], "a,b\n1,2\n"]  # other files: one sample each
    assert "c.parquet row 2: field 'text' must be a non-empty string" in error(
        read_corpus, "c", write_parquet(tmp_path / "c.parquet", [{"text": "ok"}, {"text": " "}]))


def test_prompts_from_text_lines_and_rows(tmp_path):
    (tmp_path / "p.txt").write_text("The capital of France is\n\n  \nOne, two,\n")
    prompts = read_prompts(tmp_path / "p.txt")
    assert [(p.id, p.text, p.where) for p in prompts] == [
        ("p000000", "The capital of France is", f"{tmp_path / 'p.txt'}:1"),
        ("p000001", "One, two,", f"{tmp_path / 'p.txt'}:4")]
    rows = [{"id": "fr", "text": "The capital of France is"}, {"text": "no id"}, {"id": "7", "text": "seven"}]
    assert [(p.id, p.text) for p in read_prompts(write_parquet(tmp_path / "p.parquet", rows))] == [
        ("fr", "The capital of France is"), ("p000001", "no id"), ("7", "seven")]
    assert [p.id for p in read_prompts(write_jsonl(tmp_path / "n.jsonl", [{"id": 7, "text": "x"}]))] == ["7"]
    assert "p.jsonl:2: duplicate id 'fr' (first at line 1)" in error(
        read_prompts, write_jsonl(tmp_path / "p.jsonl", [rows[0], rows[0]]))
    assert "p.jsonl:1: field 'text' is missing" in error(read_prompts, write_jsonl(tmp_path / "p.jsonl", [{"id": "x"}]))
    assert "no prompts" in error(read_prompts, write_jsonl(tmp_path / "p.jsonl", []))
    (tmp_path / "p.md").write_text("x")
    assert "unsupported prompt file type '.md'" in error(read_prompts, tmp_path / "p.md")
    assert "does not exist" in error(read_prompts, tmp_path / "missing.md")


def test_hugging_face_datasets_folders(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = pairs(3)
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    assert read_pairs(tmp_path / "ds") == read_pairs(write_jsonl(tmp_path / "p.jsonl", rows))
    datasets.DatasetDict({"train": datasets.Dataset.from_list([{"text": "a b"}, {"text": "c"}])}).save_to_disk(
        str(tmp_path / "one"))
    samples = read_corpus("hf", tmp_path / "one")
    assert [s.text for s in samples] == ["a b", "c"] and samples[1].where == f"{tmp_path / 'one' / 'train'} row 2"
    two = datasets.DatasetDict({"train": datasets.Dataset.from_list([{"text": "a"}]),
                                "test": datasets.Dataset.from_list([{"text": "b"}])})
    two.save_to_disk(str(tmp_path / "two"))
    assert "holds the splits train, test" in error(read_prompts, tmp_path / "two")
    datasets.Dataset.from_list([{"text": "a"}, {"text": ""}]).save_to_disk(str(tmp_path / "blank"))
    assert f"{tmp_path / 'blank'} row 2: field 'text' must be a non-empty string" in error(
        read_prompts, tmp_path / "blank")


def test_a_datasets_folder_without_the_package_is_one_line(tmp_path, monkeypatch):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "dataset_info.json").write_text("{}")
    (folder / "state.json").write_text("{}")
    monkeypatch.setitem(__import__("sys").modules, "datasets", None)  # import datasets -> ImportError
    assert "needs the datasets package" in error(read_pairs, folder)
