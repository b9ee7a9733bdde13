"""Capture parity on tiny random models of every family: eager attention, untraced logits, residual bookkeeping."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from lmxray.capture.plan import CapturePlan
from lmxray.models.loader import from_hf
from tiny_models import FAMILIES, BosTokenizer, tiny_model

PROB_TOL = 1e-5  # captured fp32 probabilities vs eager output_attentions
LOGIT_TOL = 1e-6  # logits with capture vs without, fp32, when SDPA makes the output
ONE_PASS_TOL = 1e-5  # logits when the captured probabilities make the output, vs eager and vs SDPA, fp32
ENTROPY_TOL = 1e-5  # row entropy (nats) vs -sum p log p of eager's probabilities (tiny models: small scores)
BATCH_TOL = 1e-5  # a left-padded batch vs the single-prompt run
BOOK_TOL = 1e-5  # resid_out - (resid_in + attention_output + mlp_output)

PROMPTS = ["hello world, this is a test", "short one", "the quick brown fox jumps"]
FULL = CapturePlan(per_head=True, n_values=None, lens_positions=None)


def _drift(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


@pytest.fixture(scope="module", params=sorted(FAMILIES) + ["mixtral"])  # one mixture of experts
def family_models(request):
    """(family, lmxray Model, eager reference model with the same weights)."""
    base = tiny_model(request.param)
    eager = copy.deepcopy(base)
    return request.param, from_hf(base, BosTokenizer(), request.param), eager


def _eager(eager_model, model, prompt):
    ids = torch.tensor([model.encode(prompt)])
    with torch.no_grad():
        out = eager_model(ids, output_attentions=True)
    return torch.stack(out.attentions)[:, 0].numpy(), out.logits[0].numpy()  # [layer, head, q, k], [pos, vocab]


def test_probabilities_match_eager(family_models):
    family, model, eager_model = family_models
    for prompt in PROMPTS:
        trace = model.trace(prompt, plan=FULL)
        ref_attn, _ = _eager(eager_model, model, prompt)
        drift = _drift(trace.attention_heads, ref_attn)
        assert drift <= PROB_TOL, f"{family}: per-head probabilities drift {drift:.3e} from eager (tol {PROB_TOL})"
        drift = _drift(trace.attention, ref_attn.sum(1))
        assert drift <= PROB_TOL * 4, f"{family}: head-summed map drifts {drift:.3e} from eager"
        rows = trace.attention_heads.sum(-1)
        assert _drift(rows, np.ones_like(rows)) <= PROB_TOL, f"{family}: attention rows do not sum to 1"
        ref_entropy = torch.special.entr(torch.tensor(ref_attn, dtype=torch.float64)).sum(-1).numpy()
        drift = _drift(trace.entropy, ref_entropy)
        assert drift <= ENTROPY_TOL, f"{family}: row entropy drifts {drift:.3e} nats from eager's (tol {ENTROPY_TOL})"


def test_logits_unchanged_by_capture(family_models):
    family, model, eager_model = family_models
    prompt = PROMPTS[0]
    untraced = model.logits(prompt).numpy()
    trace = model.trace(prompt, plan=FULL)
    # the lens at the last layer is the model's own final norm + unembedding: it must give the untraced logits
    final_logp = torch.log_softmax(torch.tensor(untraced), -1).numpy()
    drift = _drift(np.log(trace.lens.target_prob[-1]), final_logp.max(-1))
    assert drift <= LOGIT_TOL * 10, f"{family}: final-layer lens drifts {drift:.3e} from the untraced logits"
    top = trace.top_k[0]
    assert top.token_id == int(untraced[-1].argmax()), f"{family}: traced top-1 differs from untraced"
    assert abs(top.prob - float(np.exp(final_logp[-1].max()))) <= LOGIT_TOL
    _, eager_logits = _eager(eager_model, model, prompt)
    drift = _drift(untraced, eager_logits)
    assert drift <= PROB_TOL, f"{family}: lmxray's attention path drifts {drift:.3e} from eager logits"


def test_traced_forward_logits_equal_untraced(family_models):
    """Both attention paths: one probability pass (every row kept) and SDPA plus recompute (one row kept)."""
    family, model, eager_model = family_models
    from lmxray.capture import capture

    ids = model.encode(PROMPTS[0])
    untraced = model.logits(PROMPTS[0]).numpy()
    _, eager_logits = _eager(eager_model, model, PROMPTS[0])
    one_pass = capture(model, [ids], FULL).logits[0].numpy()
    drift = _drift(one_pass, eager_logits)
    assert drift <= ONE_PASS_TOL, f"{family}: one-pass logits drift {drift:.3e} from eager (tol {ONE_PASS_TOL})"
    drift = _drift(one_pass, untraced)
    assert drift <= ONE_PASS_TOL, f"{family}: one-pass logits drift {drift:.3e} from SDPA (tol {ONE_PASS_TOL})"
    sdpa = capture(model, [ids], CapturePlan(lens=False), rows="last").logits[0].numpy()
    drift = _drift(sdpa, untraced)
    assert drift <= LOGIT_TOL, f"{family}: SDPA-path logits drift {drift:.3e} from untraced (tol {LOGIT_TOL})"


def test_residual_bookkeeping(family_models):
    family, model, _ = family_models
    trace = model.trace(PROMPTS[0], plan=FULL)
    c = trace.components
    resid_out = c["residual"].values
    resid_in = np.concatenate([c["input_embedding"].values, resid_out[:-1]])
    drift = _drift(resid_in + c["attention_output"].values + c["mlp_output"].values, resid_out)
    assert drift <= BOOK_TOL, f"{family}: resid_out != resid_in + attn + mlp, drift {drift:.3e}"
    norm_drift = _drift(np.linalg.norm(resid_out, axis=-1), c["residual"].norm)
    assert norm_drift <= BOOK_TOL, f"{family}: residual norm drifts {norm_drift:.3e}"


def test_batched_equals_single(family_models):
    family, model, _ = family_models
    batched = model.trace(PROMPTS, plan=FULL)
    for prompt, got in zip(PROMPTS, batched):
        single = model.trace(prompt, plan=FULL)
        assert got.token_ids == single.token_ids
        for name, a, b in [("attention_heads", got.attention_heads, single.attention_heads),
                           ("residual", got.components["residual"].values, single.components["residual"].values),
                           ("query", got.components["query"].values, single.components["query"].values),
                           ("lens", got.lens.target_prob, single.lens.target_prob)]:
            drift = _drift(a, b)
            assert drift <= BATCH_TOL, f"{family}: batched {name} drifts {drift:.3e} for {prompt!r} (tol {BATCH_TOL})"
        assert abs(got.confidence - single.confidence) <= BATCH_TOL


def test_batched_kept_rows_in_small_chunks(family_models):
    """Prompts of different lengths keep different padded rows; one-row chunks put each kept row in its
    own chunk (and leave chunks with none): every kept row of every map must match the full single run."""
    family, model, _ = family_models
    plan = CapturePlan(positions=(0, -1), per_head=True, components=(), lens=False, chunk_bytes=1)
    batched = model.trace(PROMPTS, plan=plan)
    for prompt, got in zip(PROMPTS, batched):
        full = model.trace(prompt, plan=FULL)
        rows = [0, got.n_tokens - 1]
        for name, a, b in [("attention", got.attention[:, rows], full.attention[:, rows]),
                           ("attention_heads", got.attention_heads[:, :, rows], full.attention_heads[:, :, rows]),
                           ("entropy", got.entropy[:, :, rows], full.entropy[:, :, rows])]:
            drift = _drift(a, b)
            assert drift <= BATCH_TOL, f"{family}: kept {name} rows drift {drift:.3e} for {prompt!r} (tol {BATCH_TOL})"
        others = np.delete(got.attention, rows, axis=1)
        assert not others.any(), f"{family}: rows outside the plan were filled for {prompt!r}"


def test_plan_bounds_what_is_kept(family_models):
    family, model, _ = family_models
    n_layers = model.info.n_layers
    plan = CapturePlan(layers=(0, -1), positions=(-1,), components=("residual",), n_values=2, lens=False)
    trace = model.trace(PROMPTS[0], plan=plan)
    assert trace.layers == [0, n_layers - 1]
    assert trace.attention.shape[0] == 2 and trace.attention_heads is None
    kept_rows = np.flatnonzero(trace.attention.sum((0, 2)))
    assert kept_rows.tolist() == [trace.n_tokens - 1], f"{family}: rows kept {kept_rows}"
    assert set(trace.components) == {"residual"} and trace.components["residual"].values.shape[-1] == 2
    assert trace.lens is None
    default = model.trace(PROMPTS[0], position=-2)  # the lens defaults to the prediction position only
    computed = np.flatnonzero(~np.isnan(default.lens.target_prob[0]))
    assert computed.tolist() == [default.n_tokens - 2], f"{family}: lens computed at {computed}"
    full = model.trace(PROMPTS[0], plan=FULL)
    drift = _drift(trace.attention[:, -1], full.attention[[0, -1], -1])
    assert drift <= PROB_TOL, f"{family}: a restricted plan changes the kept row by {drift:.3e}"


@pytest.mark.parametrize("plan", [
    FULL,
    CapturePlan(),
    CapturePlan(layers=(0, -1), positions=(0, -1), per_head=True, heads=(1,), n_values=None, lens=False),
    CapturePlan(attention=False, row_stats=False, components=("query", "mlp_hidden"), n_values=3),
], ids=["full", "default", "subset-full-vectors", "components-only"])
def test_memory_estimate_equals_the_recorder_buffers(family_models, plan, monkeypatch):
    """The budget check's estimate is the bytes the recorder really allocates, buffer by buffer."""
    from lmxray.capture import api

    family, model, _ = family_models
    seen = {}
    real_check = api.check_fits

    def spy(parts, *args, **kwargs):
        seen["parts"] = parts
        real_check(parts, *args, **kwargs)

    monkeypatch.setattr(api, "check_fits", spy)
    ids = [model.encode(p) for p in PROMPTS]
    rows = "all" if plan.positions is None else list(plan.positions)
    captured = api.capture(model, ids, plan, rows=rows)
    buffers = [captured.attention, captured.attention_heads, captured.entropy, captured.lens_residual]
    buffers += [t for name in plan.components if captured.summary(name) for t in captured.summary(name)]
    real = sum(t.numel() * t.element_size() for t in buffers if t is not None)
    assert sum(seen["parts"].values()) == real, f"{family}: estimate {seen['parts']} != {real} bytes allocated"


def test_capture_too_big_for_memory_is_one_clear_error(family_models, monkeypatch):
    from lmxray.capture import budget
    from lmxray.errors import LmxrayError

    family, model, _ = family_models
    monkeypatch.setattr(budget, "free_bytes", lambda device: (64 * 2**10, None))
    with pytest.raises(LmxrayError, match=r"needs about .* GiB of memory \(.*\) for 1 prompt of up to") as err:
        model.trace(PROMPTS[0], plan=FULL)
    assert "--per-head" in err.value.fix and "\n" not in str(err.value)
    with pytest.raises(LmxrayError, match=r"held twice while the trace is built"):  # kept rows are spread out
        model.trace(PROMPTS[0], plan=dataclasses.replace(FULL, positions=(-1,)))
