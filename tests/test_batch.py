"""`lmxray batch` on a tiny model: each prompt's row against HF eager attention and the untraced forward, the
finished tables, traces, resume, and one-line errors."""

from __future__ import annotations

import copy
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from lmxray.experiments.batch import BatchConfig, batch_store, finish_batch, run_batch
from lmxray.experiments.datasets import Prompt
from lmxray.models.loader import from_hf
from lmxray.trace.reader import read_trace
from cli_helpers import assert_user_error, run
from tiny_models import BosTokenizer, tiny_model

EAGER_TOL = 1e-5  # batch rows (padded, batched) vs HF eager output_attentions and the untraced forward, one prompt
TEXTS = ["The capital of France is", "hello there", "water is wet and cold, so it", "a"]


@pytest.fixture(scope="module")
def tiny():
    return from_hf(tiny_model("llama"), BosTokenizer(), "tiny-llama")


def eager_reference(model, text: str) -> dict:
    """One prompt alone through an eager copy: heads summed per layer at the last position, by hand."""
    eager = copy.deepcopy(model.hf)
    eager.set_attn_implementation("eager")
    ids = torch.tensor([model.encode(text)])
    with torch.no_grad():
        out = eager(ids, output_attentions=True)
    rows = torch.stack(out.attentions)[:, 0, :, -1].sum(1).double().numpy()  # [layer, k_pos]
    mass = rows.sum(0)  # summed over layers and heads
    p = mass / mass.sum()
    probs = torch.softmax(out.logits[0, -1].double(), -1)
    return {"first_share": rows[:, 0] / rows.sum(-1), "sink_share": p[0],
            "entropy_bits": float(-(p[p > 0] * np.log2(p[p > 0])).sum()), "entropy_norm":
            float(-(p[p > 0] * np.log2(p[p > 0])).sum() / np.log2(len(p))) if len(p) > 1 else 0.0,
            "confidence": float(probs.max()), "predicted_id": int(probs.argmax()), "total_mass": float(mass.sum())}


def test_rows_match_eager_attention_and_the_untraced_forward(tiny, tmp_path):
    prompts = [Prompt(f"q{i}", t, f"x:{i}") for i, t in enumerate(TEXTS)]
    config = BatchConfig(batch_size=3)
    store = batch_store(tmp_path / "run", "tiny", config)
    stats = run_batch(tiny, prompts, store, config)
    assert (stats["prompts"], stats["computed"], stats["resumed"]) == (4, 4, 0)
    summary = finish_batch(store, prompts, config, "tiny-llama")
    table = pq.read_table(tmp_path / "run" / "prompts.parquet").to_pylist()
    layers = pq.read_table(tmp_path / "run" / "layers.parquet").to_pydict()
    assert [r["id"] for r in table] == [p.id for p in prompts]  # file order, whatever the batches
    n_layers = tiny.info.n_layers
    assert layers["id"] == [p.id for p in prompts for _ in range(n_layers)] and summary["layers"] == n_layers
    for i, (row, text) in enumerate(zip(table, TEXTS)):
        want = eager_reference(tiny, text)
        got = {**row, "first_share": np.array(layers["first_share"][i * n_layers:(i + 1) * n_layers])}
        assert got["predicted_id"] == want["predicted_id"] and got["prediction"] == tiny.token_text(want["predicted_id"])
        assert got["n_tokens"] == len(tiny.encode(text))
        for name in ("first_share", "sink_share", "entropy_bits", "entropy_norm", "confidence", "total_mass"):
            drift = np.abs(np.asarray(got[name]) - want[name]).max()
            assert drift <= EAGER_TOL, f"tiny-llama, prompt {i}: {name} drifts {drift:.3e} from eager"
    assert abs(summary["mean_confidence"] - np.mean([r["confidence"] for r in table])) <= 1e-12


def test_cli_tables_traces_json_and_resume(capsys, tiny_dir, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"id/{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    folder = tmp_path / "run"
    code, stdout, err = run(capsys, "batch", prompts, "--model", tiny_dir, "--out", folder, "--traces", "jsonl",
                            "--batch-size", 3)
    assert code == 0, err
    assert "batch of 4 prompts" in stdout and "id/0" in stdout and "4 prompts computed, 0 resumed" in err
    rows = pq.read_table(folder / "prompts.parquet").to_pylist()
    for row in rows:
        trace = read_trace(folder / row["trace_file"])
        assert trace.predicted_token == row["predicted_id"] and trace.n_tokens == row["n_tokens"]
        assert abs(trace.confidence - row["confidence"]) <= EAGER_TOL
    assert len({r["trace_file"] for r in rows}) == 4 and (folder / "prompts.csv").is_file()
    code, stdout, _ = run(capsys, "batch", prompts, "--model", tiny_dir, "--out", folder, "--traces", "jsonl", "--json")
    data = json.loads(stdout)
    assert code == 0 and data["run_stats"]["computed"] == 0 and data["run_stats"]["resumed"] == 4
    assert data["prompts"] == 4 and data["run"] == str(folder)
    code, stdout, _ = run(capsys, "batch", "--summary", folder, "--json")
    assert code == 0 and json.loads(stdout)["mean_confidence"] == data["mean_confidence"]
    prompts.write_text(prompts.read_text().replace("hello there", "hello again"))  # an edited prompt runs again
    code, stdout, _ = run(capsys, "batch", prompts, "--model", tiny_dir, "--out", folder, "--traces", "jsonl", "--json")
    data = json.loads(stdout)
    assert code == 0 and (data["run_stats"]["computed"], data["run_stats"]["resumed"]) == (1, 3)
    assert pq.read_table(folder / "prompts.parquet").num_rows == 4
    assert_user_error(capsys, ["batch", prompts, "--model", tiny_dir, "--out", folder], "other settings", "--fresh")


def test_bad_input_is_one_line_and_leaves_no_folder(capsys, tiny_dir, tmp_path):
    out = tmp_path / "run"
    long = tmp_path / "long.txt"
    long.write_text("short\n" + "x" * 100 + "\n")
    assert_user_error(capsys, ["batch", long, "--model", tiny_dir, "--out", out], "prompt 'p000001'", "long.txt:2",
                      "longer than the model's context", out_file=out)
    assert_user_error(capsys, ["batch", tmp_path / "none.jsonl", "--model", tiny_dir, "--out", out], "does not exist",
                      out_file=out)
    assert_user_error(capsys, ["batch", long, "--model", tiny_dir, "--out", out, "--traces", "html"],
                      "unknown trace format", out_file=out)
    assert_user_error(capsys, ["batch", "--model", tiny_dir, "--out", out], "no prompts given", out_file=out)
    assert_user_error(capsys, ["batch", "--summary", tmp_path], "no batch summary")
    assert not out.exists()

