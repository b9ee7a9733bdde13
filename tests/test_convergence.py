"""Convergence table and comparison metrics on a hand-made trace whose answers are computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmxray.analysis.convergence import compare, convergence, summarize
from lmxray.trace.types import ModelInfo, TokenScore, Trace

TOL = 1e-12


def hand_trace(mass, expected, confidence=0.5) -> Trace:
    """A 4-token trace whose attention at the last position sums to ``mass`` over 2 layers."""
    info = ModelInfo("hand", "in-memory", None, "llama", 2, 1, 1, 4, 10, "float32")
    attention = np.zeros((2, 4, 4), dtype=np.float32)
    attention[0, 3] = np.asarray(mass) / 2
    attention[1, 3] = np.asarray(mass) / 2
    return Trace(model=info, prompt="a b c d", token_ids=[1, 2, 3, 4], tokens=["a", " b", " c", " d"], position=3,
                 top_k=[TokenScore(5, " e", confidence)], expected_attention={3: expected},
                 capture={"threshold": 0.01}, layers=[0, 1], attention=attention)


def test_metrics_match_hand_computation():
    mass = [1.2, 0.005, 0.3, 0.495]  # sums to 2 = layers x heads
    s = summarize(hand_trace(mass, [0, 3]))
    p = np.array(mass) / 2
    assert s.total_mass == pytest.approx(2.0, abs=1e-6)
    assert s.sink_mass == pytest.approx(1.2, abs=1e-6)
    assert s.active_positions == 3  # 0.005 is below the 0.01 threshold
    assert s.unexpected_positions == 1  # position 2 (0.3 > 0.1); position 1 has 0.005
    assert s.unexpected_mass == pytest.approx(0.305, abs=1e-6)
    assert s.expected_share == pytest.approx((1.2 + 0.495) / 2, abs=1e-6)
    entropy = -sum(x * math.log2(x) for x in p)
    assert abs(s.entropy_bits - entropy) < 1e-6, f"entropy drifts {abs(s.entropy_bits - entropy):.2e}"


def test_table_order_and_status():
    rows = convergence(hand_trace([1.2, 0.005, 0.3, 0.495], [0, 3]))
    assert [r.position for r in rows] == [0, 3, 2, 1]
    assert [r.status for r in rows] == ["expected", "expected", "unexpected", "unexpected"]
    assert sum(r.share for r in rows) == pytest.approx(1.0, abs=1e-6)


def test_compare_lists_both_traces():
    a, b = hand_trace([2, 0, 0, 0], [0], 0.9), hand_trace([0.5, 0.5, 0.5, 0.5], [0], 0.1)
    rows = {label: (va, vb) for label, va, vb in compare(a, b)}
    assert rows["confidence"] == (0.9, 0.1)
    assert rows["attention entropy (bits)"][0] == pytest.approx(0.0, abs=TOL)
    assert rows["attention entropy (bits)"][1] == pytest.approx(2.0, abs=1e-6)  # uniform over 4 positions
