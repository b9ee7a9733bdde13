"""End to end on the built-in SmolLM2-135M (installed by the Makefile): real predictions, parity, the demo."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import lmxray
from lmxray.cli import main

pytestmark = pytest.mark.builtin

PROB_TOL = 1e-5  # captured probabilities vs HF eager output_attentions on the same weights
LOGIT_TOL = 1e-6  # traced vs untraced logits
ENTROPY_TOL = 5e-5  # row entropy (nats) vs -sum p log p of eager's probabilities (computed as log Z - E[score])


@pytest.fixture(scope="module")
def smollm2():
    return lmxray.load("smollm2")


def test_identity(smollm2):
    info = smollm2.info
    assert (info.architecture, info.n_layers, info.n_heads, info.n_kv_heads, info.d_model) == ("llama", 30, 9, 3, 576)
    assert info.source == "builtin" and len(info.sha256) == 64


@pytest.mark.parametrize("prompt, answer", [("The capital of France is", " Paris"),
                                            ("The capital of Myanmar is", " Yang")])
def test_known_predictions(smollm2, prompt, answer):
    trace = smollm2.trace(prompt)
    assert trace.predicted_text == answer, f"{prompt!r} -> {trace.predicted_text!r}, expected {answer!r}"
    untraced = smollm2.logits(prompt)[-1]
    assert trace.predicted_token == int(untraced.argmax())
    assert abs(trace.confidence - float(torch.softmax(untraced, -1).max())) <= LOGIT_TOL
    assert "".join(trace.tokens) == prompt and not any("Ġ" in t for t in trace.tokens)


def test_probabilities_match_eager(smollm2):
    prompt = "The capital of France is Paris. Paris is a"
    eager = copy.deepcopy(smollm2.hf)
    eager.set_attn_implementation("eager")
    ids = torch.tensor([smollm2.encode(prompt)])
    with torch.no_grad():
        ref = torch.stack(eager(ids, output_attentions=True).attentions)[:, 0].numpy()
    trace = smollm2.trace(prompt, plan=lmxray.CapturePlan(per_head=True))
    drift = float(np.abs(trace.attention_heads - ref).max())
    assert drift <= PROB_TOL, f"smollm2: per-head probabilities drift {drift:.3e} from eager (tol {PROB_TOL})"
    assert trace.attention_mass is not None
    mass_drift = float(np.abs(trace.attention_mass - ref[:, :, -1].sum((0, 1))).max())
    assert mass_drift <= PROB_TOL * 30 * 9, f"smollm2: convergence mass drifts {mass_drift:.3e} from eager"


def test_long_real_text_matches_eager_in_both_attention_paths(smollm2):
    """300 tokens of shipped text: the one-pass path (every row) and SDPA plus recompute (one row)."""
    from lmxray.experiments.datasets import SHIPPED_CORPORA

    ids = smollm2.tokenizer(SHIPPED_CORPORA["finance-news"].read_text())["input_ids"][:300]
    eager = copy.deepcopy(smollm2.hf)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        out = eager(torch.tensor([ids]), output_attentions=True)
    ref = torch.stack(out.attentions)[:, 0].double()
    trace = smollm2.trace(ids, plan=lmxray.CapturePlan(per_head=True))
    drift = float((torch.tensor(trace.attention_heads).double() - ref).abs().max())
    assert drift <= PROB_TOL, f"smollm2, 300 tokens: per-head probabilities drift {drift:.3e} (tol {PROB_TOL})"
    drift = float((torch.tensor(trace.entropy).double() - torch.special.entr(ref).sum(-1)).abs().max())
    assert drift <= ENTROPY_TOL, f"smollm2, 300 tokens: row entropy drifts {drift:.3e} nats (tol {ENTROPY_TOL})"
    last = smollm2.trace(ids, plan=lmxray.CapturePlan(positions=(-1,), per_head=True))
    drift = float((torch.tensor(last.attention_heads[:, :, -1]).double() - ref[:, :, -1]).abs().max())
    assert drift <= PROB_TOL, f"smollm2, 300 tokens: kept last row drifts {drift:.3e} (tol {PROB_TOL})"


def test_logit_lens_final_layer_is_the_prediction(smollm2):
    trace = smollm2.trace("The capital of France is")
    assert trace.lens.top_ids[-1, -1, 0] == trace.predicted_token
    assert abs(trace.lens.target_prob[-1, -1] - trace.confidence) <= 1e-5
    first_top1 = int(np.argmax(trace.lens.top_ids[:, -1, 0] == trace.predicted_token))
    assert 0 < first_top1 < 30, "the prediction should emerge in a middle layer, not at the embedding"


def test_random_twin_has_fresh_weights(smollm2):
    twin = lmxray.load("random:smollm2", seed=1)
    assert twin.hf.config.to_dict() | {"_name_or_path": None} == smollm2.hf.config.to_dict() | {"_name_or_path": None}
    assert twin.encode("The capital of France is") == smollm2.encode("The capital of France is")
    w, w0 = twin.hf.model.layers[0].self_attn.q_proj.weight, smollm2.hf.model.layers[0].self_attn.q_proj.weight
    assert not torch.allclose(w, w0)
    again = lmxray.load("smollm2", init="random", seed=1)
    assert torch.equal(again.hf.model.layers[0].self_attn.q_proj.weight, w), "random init is not reproducible"
    assert twin.info.source == "random" and twin.info.name.startswith("random:")


def test_demo_flow_through_the_cli(capsys, tmp_path):
    paris, myanmar = tmp_path / "paris.jsonl", tmp_path / "myanmar.jsonl"
    assert main(["trace", "The capital of France is Paris. Paris is a", "--expect-tokens", "<first>, Paris, is",
                 "--out", str(paris)]) == 0
    assert main(["trace", "The capital of Myanmar is", "--expect-tokens", "<first>, The, capital, of",
                 "--out", str(myanmar)]) == 0
    capsys.readouterr()
    assert main(["compare", str(paris), str(myanmar), "--json"]) == 0
    import json

    metrics = {m["metric"]: (m["a"], m["b"]) for m in json.loads(capsys.readouterr().out)["metrics"]}
    assert metrics["prediction"][1] == " Yang"
    reread = lmxray.read_trace(myanmar)
    assert reread.predicted_text == " Yang" and reread.expected_attention == {4: [0, 1, 2]}
