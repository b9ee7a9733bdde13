"""The library's orchestration: the random-init twin, the checkpoint evolution and the report's model run."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import lmxray
from lmxray.errors import LmxrayError
from lmxray.models.loader import from_hf, load
from lmxray.probes.twins import random_twin, twin_name
from tiny_models import BosTokenizer, save_tiny, tiny_model, tiny_tokenizer

PROB_TOL = 1e-5  # a twin's per-head map vs HF eager output_attentions of the twin loaded from disk (fp32)


def same_weights(a, b) -> list[str]:
    """Names of the tensors that differ between two models' state dicts (all of them when the names differ)."""
    sa, sb = a.hf.state_dict(), b.hf.state_dict()
    if set(sa) != set(sb):
        return sorted(set(sa) ^ set(sb))
    return [k for k in sa if not torch.equal(sa[k], sb[k])]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_twin_of_a_spec_or_a_loaded_model_is_the_loaders_twin(family, tmp_path):
    path = str(save_tiny(family, tmp_path / family))
    reference = load(f"random:{path}", seed=3)
    model = lmxray.load(path)
    for twin in (random_twin(path, 3), random_twin(f"random:{path}", 3), random_twin(model, 3)):
        assert not same_weights(twin, reference), f"{family}: the twin's weights differ: {same_weights(twin, reference)}"
        assert twin.info == reference.info and twin.origin == reference.origin
    assert random_twin(model, 3).tokenizer is model.tokenizer
    assert same_weights(random_twin(model, 4), reference), "another seed gave the same weights"
    assert random_twin(reference, 5).info.name == reference.info.name.replace("@seed3", "@seed5")


def test_twin_of_an_in_memory_model():
    model = from_hf(tiny_model("llama"), BosTokenizer(), "tiny-llama")
    twin = random_twin(model, 2)
    assert twin.info.name == twin_name("tiny-llama", 2) == "random:tiny-llama@seed2" and twin.origin is None
    assert twin.info.source == "random" and same_weights(twin, model)


@pytest.mark.parametrize("args, words", [((-1,), "seed"), ((True,), "seed"), ((2**63,), "seed")])
def test_twin_refuses_bad_seeds_and_models(args, words):
    model = from_hf(tiny_model("llama"), BosTokenizer(), "tiny-llama")
    with pytest.raises(LmxrayError, match=words):
        random_twin(model, *args)
    with pytest.raises(LmxrayError, match="model_or_spec"):
        random_twin(3)


def test_checkpoint_evolution_scores_the_tracked_heads_at_each_checkpoint(tiny_dir, tmp_path):
    from lmxray.probes.evolution import checkpoint_evolution
    from lmxray.probes.heads import model_head_scores, probe_set

    model = lmxray.load(str(tiny_dir))
    probes = probe_set(model, n_repeats=1)
    scores = model_head_scores(model, probes)
    other_dir = str(tmp_path / "other")  # another checkpoint of the same architecture and tokenizer
    tiny_model("llama", seed=1).save_pretrained(other_dir)
    tiny_tokenizer().save_pretrained(other_dir)
    rows = checkpoint_evolution(scores, [str(tiny_dir), other_dir], ["previous_token", "induction"], probes)
    assert [r["checkpoint"] for r in rows] == [str(tiny_dir), other_dir]
    other = model_head_scores(lmxray.load(other_dir), probes)
    for row, ref in zip(rows, (scores, other)):
        for p, got in row["scores"].items():
            top = scores.top_rows(p, 1)[0]
            assert (got["layer"], got["head"]) == (top["layer"], top["head"]), "not the model's top head"
            want = float(ref.scores[p][ref.layers.index(got["layer"]), got["head"]])
            assert got["score"] == want, f"{row['checkpoint']} {p}: {got['score']} vs {want}"
            assert got["best"] == ref.top_rows(p, 1)[0]
    with pytest.raises(LmxrayError, match="no checkpoints"):
        checkpoint_evolution(scores, [], ["induction"], probes)


def test_report_run_traces_the_twin_and_scores_against_twins(tiny_dir):
    from lmxray.pipelines.report import run_report
    from lmxray.probes.heads import head_scores_vs_baseline, probe_set

    model = lmxray.load(str(tiny_dir))
    ran = run_report(model, "hi there", position=-2, top_k=3, twin=True, head_scores=True, baseline_seeds=2, seed=4)
    at = len(model.encode("hi there")) - 2
    assert ran.trace.attention_heads is not None and len(ran.trace.top_k) == 3 and ran.trace.position == at
    assert ran.twin.model.name.endswith("@seed4") and ran.twin.position == at
    eager = copy.deepcopy(load(f"random:{tiny_dir}", seed=4).hf)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        out = eager(torch.tensor([model.encode("hi there")]), output_attentions=True)
    want = torch.stack(out.attentions)[:, 0].double().numpy()
    d = float(np.abs(ran.twin.attention_heads - want).max())
    assert d <= PROB_TOL, f"the twin's maps drift {d:.2e} from its eager attention (tol {PROB_TOL})"
    twins = (load(f"random:{tiny_dir}", seed=s) for s in (5, 6))
    ref, _ = head_scores_vs_baseline(model, twins, "random init (2 seeds)", probe_set(model))
    assert ran.head_scores.baseline == ref.baseline
    for p in ref.z:
        assert np.array_equal(ran.head_scores.z[p], ref.z[p], equal_nan=True), f"{p}: z differs from disk twins"
    assert run_report(model, "hi there").twin is None
    with pytest.raises(LmxrayError, match="baseline_seeds"):
        run_report(model, "hi there", head_scores=True, baseline_seeds=0)
