"""Divergence metrics against hand computations: JS divergence, alignment, curve figures, bootstrap, summaries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmxray.analysis.divergence import (align, bootstrap_ci, bos_profile, category_summary, curve_metrics,
                                        differing_spans, first_share, js_divergence, length_split, normalise,
                                        token_units, unit_mass)

HAND_TOL = 1e-12  # float64 arithmetic on a handful of numbers


def test_js_identical_is_zero_and_disjoint_is_one():
    p = np.array([0.2, 0.3, 0.5])
    assert abs(js_divergence(p, p)) <= HAND_TOL, f"JS of identical rows is {js_divergence(p, p)}"
    disjoint = js_divergence(np.array([0.5, 0.5, 0.0, 0.0]), np.array([0.0, 0.0, 0.25, 0.75]))
    assert abs(disjoint - 1.0) <= HAND_TOL, f"JS of disjoint rows is {disjoint}, expected 1"


def test_js_matches_hand_computation():
    # p = [1/2, 1/2, 0], q = [0, 1/2, 1/2], m = [1/4, 1/2, 1/4]:
    # KL(p||m) = 1/2 log2 2 + 1/2 log2 1 = 1/2, KL(q||m) = 1/2, so JS = 1/2.
    value = js_divergence(np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5]))
    assert abs(value - 0.5) <= HAND_TOL, f"JS drift {value - 0.5:.3e}"
    # p = [1, 0], q = [1/2, 1/2]: m = [3/4, 1/4]; KL(p||m) = log2(4/3), KL(q||m) = 1/2 log2(2/3) + 1/2 log2 2
    expected = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5)
    value = js_divergence(np.array([1.0, 0.0]), np.array([0.5, 0.5]))
    assert abs(value - expected) <= HAND_TOL, f"JS drift {value - expected:.3e}"


def test_js_is_per_layer_along_last_axis():
    rows = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert np.allclose(js_divergence(rows, rows[::-1]), [js_divergence(rows[0], rows[1])] * 2, atol=HAND_TOL)


def test_normalise_and_first_share():
    rows = np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # head-summed rows sum to n_heads
    assert np.allclose(normalise(rows), [[0.75, 0.25, 0.0], [0.0, 0.0, 0.0]], atol=HAND_TOL)
    assert np.allclose(first_share(rows), [0.75, 0.0], atol=HAND_TOL)


def test_alignment_pads_the_shorter_row_with_zero_mass():
    p, q = np.array([[0.5, 0.5]]), np.array([[0.2, 0.3, 0.5]])
    start_p, start_q = align(p, q, "start")
    assert np.array_equal(start_p, [[0.5, 0.5, 0.0]]) and np.array_equal(start_q, q)
    end_p, _ = align(p, q, "end")
    assert np.array_equal(end_p, [[0.0, 0.5, 0.5]])
    # aligned at the end, the prediction positions face each other
    assert js_divergence(*align(np.array([0.0, 1.0]), np.array([0.0, 0.0, 1.0]), "end")) <= HAND_TOL
    assert abs(js_divergence(*align(np.array([0.0, 1.0]), np.array([0.0, 0.0, 1.0]), "start")) - 1.0) <= HAND_TOL
    with pytest.raises(ValueError):
        align(p, q, "middle")


def test_token_units_match_shared_tokens_and_group_differing_spans():
    # shared 5, 6 | replaced [7] by [70, 71] | shared 8 | inserted [99] on b's side | shared 9
    units_a, units_b, n = token_units([5, 6, 7, 8, 9], [5, 6, 70, 71, 8, 99, 9])
    assert n == 6
    assert units_a.tolist() == [0, 1, 2, 3, 5] and units_b.tolist() == [0, 1, 2, 2, 3, 4, 5]
    assert differing_spans([5, 6, 7, 8, 9], [5, 6, 70, 71, 8, 99, 9]) == [([7], [70, 71]), ([], [99])]
    assert token_units([1, 2], [1, 2])[2] == 2 and differing_spans([1, 2], [1, 2]) == []
    rows = np.array([[0.1, 0.2, 0.3, 0.4]])
    assert np.allclose(unit_mass(rows, np.array([0, 1, 1, 2]), 3), [[0.1, 0.5, 0.4]], atol=HAND_TOL)
    with pytest.raises(ValueError):
        unit_mass(rows, np.array([0, 1]), 2)
    with pytest.raises(ValueError):
        align(rows, rows, "tokens")


def test_inserting_a_token_that_receives_no_mass_gives_zero_js_at_every_layer():
    """Only token alignment leaves a pair unchanged by a token whose attention receives no mass."""
    rng = np.random.default_rng(0)
    p = normalise(rng.random((30, 8)))  # [layer, k_pos]
    a_ids = [11, 12, 13, 14, 15, 16, 17, 18]
    for where in (0, 3, 7):  # before the sink, in the middle, just before the prediction position
        b_ids = a_ids[:where] + [99] + a_ids[where:]
        q = np.insert(p, where, 0.0, axis=1)  # the inserted token holds no mass; the others keep theirs
        js = js_divergence(*align(p, q, "tokens", (a_ids, b_ids)))
        assert js.shape == (30,) and np.abs(js).max() <= HAND_TOL, f"insert at {where}: JS {js.max():.3e}"
        for how in ("start", "end"):
            shifted = js_divergence(*align(p, q, how))
            if (how, where) != ("end", 0):  # a token before position 0 shifts nothing when aligned at the end
                assert shifted.mean() > 0.01, f"{how}, insert at {where}: mean JS {shifted.mean():.3e} (a length artefact)"
    # a token that does receive mass counts by its mass: it takes 0.2 from the rest
    q = np.insert(p * 0.8, 3, 0.2, axis=1)
    m = 0.5 * (np.insert(p, 3, 0.0, axis=1) + q)
    direct = 0.5 * (np.insert(p, 3, 0.0, axis=1) * np.log2(np.insert(p, 3, 1.0, axis=1) / np.where(m > 0, m, 1))).sum(1) \
        + 0.5 * (q * np.log2(q / m)).sum(1)
    js = js_divergence(*align(p, q, "tokens", (a_ids, a_ids[:3] + [99] + a_ids[3:])))
    assert np.abs(js - direct).max() <= HAND_TOL


def test_a_differing_span_is_one_unit_whatever_its_length():
    p = np.array([0.6, 0.3, 0.1])  # "Paris is ." ...
    q = np.array([0.4, 0.2, 0.3, 0.1])  # "Ly on is ." : the sink's mass split over two tokens
    assert js_divergence(*align(p, q, "tokens", ([1, 2, 3], [7, 8, 2, 3]))) <= HAND_TOL
    assert js_divergence(*align(p, q, "start")) > 0.1


def test_length_split_pooled_and_within_categories():
    split = length_split(["a", "a", "a", "b", "b", "c"], [True, False, False, True, False, True],
                         [0.1, 0.2, 0.4, 0.01, 0.03, 0.0])
    assert (split["n_matched"], split["n_mismatched"]) == (3, 3)
    assert split["mean_js_matched"] == pytest.approx(0.11 / 3) and split["mean_js_mismatched"] == pytest.approx(0.21)
    assert split["ratio"] == pytest.approx(0.21 / (0.11 / 3))
    # categories a and b hold both kinds; a's matched mean counts twice (two mismatched pairs), b's once
    assert split["ratio_within_categories"] == pytest.approx(0.21 / ((2 * 0.1 + 0.01) / 3))
    none = length_split(["a"], [True], [0.1])
    assert none["n_mismatched"] == 0 and math.isnan(none["ratio"]) and math.isnan(none["ratio_within_categories"])


def test_curve_metrics_on_a_constructed_curve():
    m = curve_metrics(np.array([0.0, 0.01, 0.2, 0.5, 0.1]), threshold=0.05)
    assert (m.first_layer, m.peak_layer) == (2, 3)
    assert abs(m.peak - 0.5) <= HAND_TOL
    # trapezoids: (0 + .01)/2 + (.01 + .2)/2 + (.2 + .5)/2 + (.5 + .1)/2 = .76
    assert abs(m.area - 0.76) <= HAND_TOL, f"area drift {m.area - 0.76:.3e}"
    assert abs(m.mean - 0.81 / 5) <= HAND_TOL


def test_curve_metrics_never_crossing_and_ties():
    m = curve_metrics(np.array([0.01, 0.03, 0.03, 0.0]), threshold=0.05)
    assert m.first_layer is None
    assert m.peak_layer == 1, "ties go to the first layer"
    assert curve_metrics(np.array([0.05, 0.06]), threshold=0.05).first_layer == 1, "the threshold must be exceeded"
    with pytest.raises(ValueError):
        curve_metrics(np.array([]))


def test_bootstrap_interval():
    mean, low, high = bootstrap_ci([4.0, 4.0, 4.0])
    assert (mean, low, high) == (4.0, 4.0, 4.0)
    values = np.arange(20.0)
    mean, low, high = bootstrap_ci(values)
    assert mean == pytest.approx(9.5) and low < mean < high
    assert (low, high) == bootstrap_ci(values)[1:], "the interval is reproducible (fixed seed)"
    assert all(math.isnan(x) for x in bootstrap_ci([math.nan]))
    assert bootstrap_ci([1.0, math.nan, 3.0])[0] == pytest.approx(2.0), "NaNs are dropped"


def test_category_summary_counts_and_means():
    rows = category_summary(["a", "a", "b"], [1.0, math.nan, 4.0], [2, 4, 7], [0.5, 1.5, 3.0], [0.1, 0.2, 0.3])
    by_name = {r["category"]: r for r in rows}
    assert list(by_name) == ["a", "b", "all"]
    assert by_name["a"]["n_pairs"] == 2 and by_name["a"]["n_never"] == 1
    assert by_name["a"]["peak_layer"] == pytest.approx(3.0) and by_name["a"]["first_layer"] == pytest.approx(1.0)
    assert by_name["all"]["area"] == pytest.approx(5.0 / 3) and by_name["all"]["mean_js"] == pytest.approx(0.2)


def test_bos_profile_bottleneck():
    intended = np.array([[0.1, 0.9, 0.3], [0.1, 0.7, 0.5]])
    contradictory = np.array([[0.2, 0.8, 0.1], [0.0, 0.6, 0.95]])
    rows, bottleneck = bos_profile(["x", "y"], intended, contradictory)
    assert bottleneck == {"x": 1, "y": 2, "all": 1}
    row = next(r for r in rows if r["category"] == "all" and r["layer"] == 1)
    assert row["bos_share"] == pytest.approx((0.9 + 0.7 + 0.8 + 0.6) / 4)
