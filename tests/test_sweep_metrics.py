"""Divergence metrics against hand computations: JS divergence, alignment, curve figures, bootstrap, summaries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmxray.analysis.divergence import (align, bootstrap_ci, bos_profile, category_summary, curve_metrics,
                                        first_share, js_divergence, normalise)

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
