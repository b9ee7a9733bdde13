"""Logit-lens analysis: ranks and probabilities checked against an independent numpy computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmxray.analysis.lens import first_top1_layer, lens_summary, lens_table, settled_layer
from lmxray.capture.plan import CapturePlan
from lmxray.errors import LmxrayError
from lmxray.models.loader import from_hf
from lmxray.trace.reader import read_trace
from tiny_models import BosTokenizer, tiny_model

PROB_TOL = 1e-5  # fp32 lens probability vs numpy softmax of the same hidden state
PROMPT = "abcab cab"


@pytest.fixture(scope="module")
def tiny():
    return from_hf(tiny_model("llama"), BosTokenizer(), "tiny-llama")


def reference_logprobs(model, prompt: str) -> np.ndarray:
    """[layer, pos, vocab] log-probs: HF hidden states through the final norm and lm_head, softmax in numpy."""
    hf = model.hf
    ids = torch.tensor([model.encode(prompt)])
    with torch.no_grad():
        out = hf(input_ids=ids, output_hidden_states=True, use_cache=False)
        # hidden_states[i + 1] leaves layer i; the last entry already has the final norm applied
        logits = [hf.lm_head(hf.model.norm(h))[0] for h in out.hidden_states[1:-1]] + [out.logits[0]]
    z = torch.stack(logits).double().numpy()
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.mark.parametrize("position", [-1, 3])
def test_lens_rank_and_prob_match_numpy(tiny, position):
    trace = tiny.trace(PROMPT, position=-1, plan=CapturePlan(lens_positions=(position,)))
    ref = reference_logprobs(tiny, PROMPT)
    p = position % trace.n_tokens
    target = int(ref[-1, p].argmax())
    rows = lens_table(trace, position, decode=tiny.token_text)
    assert [r.layer for r in rows] == list(range(tiny.info.n_layers))
    for r in rows:
        lp = ref[r.layer, p]
        want_rank = 1 + int((lp > lp[target]).sum())
        assert r.target_rank == want_rank, f"layer {r.layer}: rank {r.target_rank}, numpy {want_rank}"
        drift = abs(r.target_prob - np.exp(lp[target]))
        assert drift < PROB_TOL, f"layer {r.layer}: target prob drift {drift:.2e}"
        want_top = np.argsort(-lp, kind="stable")[: len(r.top)]
        assert [t.token_id for t in r.top] == want_top.tolist(), f"layer {r.layer}: top-k differs"
        top_drift = max(abs(t.prob - np.exp(lp[t.token_id])) for t in r.top)
        assert top_drift < PROB_TOL, f"layer {r.layer}: top-k prob drift {top_drift:.2e}"
    assert rows[-1].target_rank == 1, "the last layer's lens is the model's own output"


def test_first_top1_and_settled_on_hand_rows():
    from lmxray.analysis.lens import LensRow

    ranks = [5, 1, 3, 1, 1]
    rows = [LensRow(layer, [], 0.0, rk) for layer, rk in enumerate(ranks)]
    assert first_top1_layer(rows) == 1
    assert settled_layer(rows) == 3
    assert first_top1_layer([LensRow(0, [], 0.0, None)]) is None


def test_summary_survives_a_file_round_trip(tiny, tmp_path):
    trace = tiny.trace(PROMPT)
    path = tmp_path / "t.jsonl"
    trace.save(path)
    a, b = lens_summary(trace), lens_summary(read_trace(path))
    assert b.rank_exact and [r.target_rank for r in a.rows] == [r.target_rank for r in b.rows]
    assert (a.first_top1, a.settled, a.target_id) == (b.first_top1, b.settled, b.target_id)
    assert a.target_text == trace.predicted_text


def test_rank_without_target_rank_falls_back_to_top_k(tiny):
    trace = tiny.trace(PROMPT)
    trace.lens.target_rank = None
    summary = lens_summary(trace)
    assert not summary.rank_exact
    for r in summary.rows:
        ids = [t.token_id for t in r.top]
        want = ids.index(summary.target_id) + 1 if summary.target_id in ids else None
        assert r.target_rank == want, f"layer {r.layer}: {r.target_rank} vs {want}"


def test_trace_without_lens_is_a_user_error(tiny):
    from lmxray.capture.plan import CapturePlan

    trace = tiny.trace(PROMPT, plan=CapturePlan(lens=False))
    with pytest.raises(LmxrayError, match="no logit lens"):
        lens_table(trace)
    with pytest.raises(LmxrayError, match="out of range"):
        lens_table(tiny.trace(PROMPT), position=99)
