"""Head-pattern scores: hand-built patterns with known answers, eager-attention parity, baselines."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from lmxray.analysis.heads import (MAX_SKIP, MIXED_THRESHOLD, PATTERNS, Z_STD_FLOOR, HeadScores, Probe,
                                   pattern_scores, score_heads, with_baseline)
from lmxray.errors import LmxrayError
from lmxray.models.loader import from_hf
from lmxray.probes.heads import capture_probes, probe_set
from tiny_models import BosTokenizer, tiny_model

EXACT_TOL = 1e-12  # hand-built patterns: scores are exact sums of ones and zeros
SCORE_TOL = 1e-5  # scores from captured fp32 attention vs the same scores from eager attention
T, N = 21, 10  # hand-built probe: BOS + a block of N tokens + the block again


def one_hot_head(targets: list[int]) -> np.ndarray:
    """[q, k] attention where row q puts all its weight on key targets[q]."""
    a = np.zeros((len(targets), len(targets)))
    a[np.arange(len(targets)), targets] = 1.0
    return a


def uniform_head(t: int) -> np.ndarray:
    return np.tril(np.ones((t, t))) / np.arange(1, t + 1)[:, None]


HAND_HEADS = {  # label -> [q, k] map on the hand-built repeated probe
    "previous_token": one_hot_head([0] + [q - 1 for q in range(1, T)]),
    "first_token": one_hot_head([0] * T),
    "self": one_hot_head(list(range(T))),
    "induction": one_hot_head([q - N + 1 if q >= T - N else q for q in range(T)]),
    "position_skip": one_hot_head([q - 3 if q >= 3 else 0 for q in range(T)]),
}


@pytest.fixture(scope="module")
def hand_scores() -> HeadScores:
    heads = [*HAND_HEADS.values(), uniform_head(T)]
    attention = np.stack(heads)[None]  # [layer 1, head, q, k]
    return score_heads([Probe(attention, repeat=N)], "hand-built")


def test_pure_heads_score_one_on_their_pattern(hand_scores):
    for h, label in enumerate(HAND_HEADS):
        got = hand_scores.scores[label][0, h]
        assert abs(got - 1.0) <= EXACT_TOL, f"pure {label} head scores {got} on its own pattern"
        assert hand_scores.labels[0, h] == label, f"head {h} labelled {hand_scores.labels[0, h]}, not {label}"
    assert hand_scores.skip_k[0, 4] == 3, f"best skip {hand_scores.skip_k[0, 4]}, built with 3"


def test_pure_heads_score_zero_on_disjoint_patterns(hand_scores):
    s = hand_scores.scores
    simple = ("previous_token", "first_token", "self")
    for h, label in enumerate(simple):
        for other in (*simple, "induction", "position_skip"):
            if other != label:
                assert s[other][0, h] <= EXACT_TOL, f"pure {label} head scores {s[other][0, h]} on {other}"


def test_uniform_head_is_mixed_with_hand_computed_scores(hand_scores):
    rows = np.arange(2, T)
    want = float(np.mean(1.0 / (rows + 1)))  # every key of row q gets 1 / (q + 1)
    for p in ("previous_token", "first_token", "self"):
        got = hand_scores.scores[p][0, 5]
        assert abs(got - want) <= EXACT_TOL, f"uniform head {p}: {got} vs hand-computed {want}"
    assert want < MIXED_THRESHOLD and hand_scores.labels[0, 5] == "mixed"


def test_skip_offsets_and_induction_need_a_repeat():
    scores, skips = pattern_scores(np.stack([HAND_HEADS["position_skip"]])[None])
    assert np.isnan(scores["induction"]).all(), "induction is undefined on a natural prompt"
    assert skips.shape == (MAX_SKIP - 1, 1, 1) and skips[1, 0, 0] == 1.0  # offsets start at 2: index 1 is k=3
    with pytest.raises(LmxrayError, match="no repeated sequence"):
        score_heads([Probe(np.stack([HAND_HEADS["self"]])[None])])
    with pytest.raises(LmxrayError, match="does not fit"):
        pattern_scores(np.stack([HAND_HEADS["self"]])[None], repeat=T)


def test_baseline_z_scores_are_pooled_per_layer(hand_scores):
    base = copy.deepcopy(hand_scores)
    for p in PATTERNS:
        base.scores[p] = np.array([[0.1, 0.2, 0.1, 0.2, 0.1, 0.2]])
    result = with_baseline(copy.deepcopy(hand_scores), [base, base], "hand baseline")
    mean, std = 0.15, 0.05  # pooled over 6 heads x 2 baselines
    for p in PATTERNS:
        want = (hand_scores.scores[p] - mean) / max(std, Z_STD_FLOOR)
        drift = np.abs(result.z[p] - want).max()
        assert drift <= 1e-9, f"{p}: z drifts {drift:.2e} from the hand computation"
    data = result.to_dict()
    assert data["baseline"] == "hand baseline" and len(data["heads"]) == 6 and "z" in data["heads"][0]


def test_unknown_pattern_is_a_user_error(hand_scores):
    with pytest.raises(LmxrayError, match="unknown pattern 'copying'"):
        hand_scores.top_heads("copying")


@pytest.fixture(scope="module")
def tiny_pair():
    base = tiny_model("llama")
    eager = copy.deepcopy(base)
    return from_hf(base, BosTokenizer(), "tiny-llama"), eager


def independent_scores(attn: np.ndarray, repeat: int) -> dict[str, np.ndarray]:
    """Loop-by-loop scores on [layer, head, q, k], written separately from the library's vectorised code."""
    n_layers, n_heads, t, _ = attn.shape
    out = {p: np.zeros((n_layers, n_heads)) for p in ("previous_token", "first_token", "self", "induction")}
    for l in range(n_layers):
        for h in range(n_heads):
            a = attn[l, h]
            out["previous_token"][l, h] = np.mean([a[q, q - 1] for q in range(2, t)])
            out["first_token"][l, h] = np.mean([a[q, 0] for q in range(2, t)])
            out["self"][l, h] = np.mean([a[q, q] for q in range(2, t)])
            out["induction"][l, h] = np.mean([a[q, q - repeat + 1] for q in range(t - repeat, t)])
    return out


def test_probe_scores_match_eager_attention(tiny_pair):
    model, eager = tiny_pair
    probes = probe_set(model, n_repeats=1, repeat_len=8, prompts=["abc de fgh"])
    maps, layers = capture_probes(model, probes)
    assert layers == [0, 1, 2] and [m.attention.shape[-1] for m in maps] == [len(p.ids) for p in probes]
    repeated = probes[-1]
    with torch.no_grad():
        ref = eager(torch.tensor([repeated.ids]), output_attentions=True).attentions
    ref = torch.stack([a[0] for a in ref]).double().numpy()  # [layer, head, q, k]
    want = independent_scores(ref, repeated.repeat)
    got, _ = pattern_scores(maps[-1].attention, repeated.repeat)
    for p, w in want.items():
        drift = np.abs(got[p] - w).max()
        assert drift <= SCORE_TOL, f"tiny llama {p}: captured-attention scores drift {drift:.2e} from eager"


def test_repeated_probe_repeats_distinct_tokens(tiny_pair):
    model, _ = tiny_pair
    probes = probe_set(model, n_repeats=2, repeat_len=6, seed=5, prompts=["abc de"])
    for p in probes[-2:]:
        block = p.ids[1:7]
        assert p.ids[0] == 1 and p.ids[1:] == block + block and len(set(block)) == 6, p.ids
        assert not {0, 1, 2} & set(block), "special tokens in the random block"
    assert probe_set(model, seed=5, n_repeats=2, repeat_len=6, prompts=[])[-1].ids == probes[-1].ids, "not reproducible"


def test_probe_set_refuses_a_repeat_count_beyond_memory_before_building_it():
    """The library call, not only the CLI: 10^8 repeats used to loop for hours before any memory check."""
    import time

    from lmxray.capture.budget import CaptureTooBig
    from lmxray.models.loader import from_hf
    from lmxray.probes.heads import probe_set
    from tiny_models import BosTokenizer, tiny_model

    model = from_hf(tiny_model("llama"), BosTokenizer(), "llama")
    start = time.perf_counter()
    with pytest.raises(CaptureTooBig, match="--repeats 100000000000 needs about"):
        probe_set(model, n_repeats=10**11)
    assert time.perf_counter() - start < 5
