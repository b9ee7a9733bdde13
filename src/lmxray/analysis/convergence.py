"""Convergence at the prediction position: where its attention mass goes, expected vs unexpected.

Mass at key position k is the post-softmax weight from the prediction
position to k, summed over every captured layer and head (so the total is
layers x heads). Pure functions: a Trace in, tables and numbers out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lmxray.errors import LmxrayError
from lmxray.trace.types import Trace

UNEXPECTED_MASS = 0.1  # an unexpected position counts as "pulling" attention above this mass


@dataclass
class ConvergenceRow:
    position: int
    token: str
    mass: float  # summed over layers and heads
    share: float  # mass / total mass at the prediction position
    status: str  # "expected", "unexpected", or "" when the trace has no expectation for this position


@dataclass
class Summary:
    """The seed's comparison metrics for one trace."""

    prompt: str
    predicted_text: str
    confidence: float
    position: int
    n_positions: int  # key positions the prediction position can see
    total_mass: float
    sink_mass: float  # mass on the first position (BOS or first token)
    active_positions: int  # key positions with mass >= the active threshold
    unexpected_positions: int  # unexpected key positions with mass > UNEXPECTED_MASS
    unexpected_mass: float
    expected_share: float | None  # share of mass on expected positions (None without expectation)
    entropy_bits: float  # Shannon entropy of the normalised mass distribution

    def as_dict(self) -> dict:
        return asdict(self)


def attention_mass(trace: Trace) -> np.ndarray:
    """Mass per key position at ``trace.position``: exact when recorded, else summed from the stored edges."""
    if trace.attention_mass is not None:
        return np.asarray(trace.attention_mass, dtype=np.float64)
    if trace.attention is None or not trace.attention[:, trace.position].any():
        raise LmxrayError(
            f"the trace has no attention rows for position {trace.position}",
            "re-run `lmxray trace` with attention capture for that position",
        )
    return trace.attention[:, trace.position].sum(0).astype(np.float64)


def convergence(trace: Trace) -> list[ConvergenceRow]:
    """Rows for every key position up to the prediction position, largest mass first."""
    mass = attention_mass(trace)[: trace.position + 1]
    total = float(mass.sum()) or 1.0
    expected = trace.expected_attention.get(trace.position)
    rows = []
    for k in np.argsort(-mass, kind="stable"):
        status = "" if expected is None else ("expected" if int(k) in expected else "unexpected")
        token = trace.tokens[k] if k < len(trace.tokens) else ""
        rows.append(ConvergenceRow(int(k), token, float(mass[k]), float(mass[k]) / total, status))
    return rows


def summarize(trace: Trace, active_threshold: float | None = None) -> Summary:
    """The metrics of the seed's comparison table (sink mass, active and unexpected positions, entropy)."""
    threshold = trace.capture.get("threshold", 0.01) if active_threshold is None else active_threshold
    rows = convergence(trace)
    mass = np.array([r.mass for r in rows])
    total = float(mass.sum())
    p = mass / total if total > 0 else mass
    nonzero = p[p > 0]
    unexpected = [r for r in rows if r.status == "unexpected"]
    has_expectation = trace.position in trace.expected_attention
    return Summary(
        prompt=trace.prompt,
        predicted_text=trace.predicted_text,
        confidence=trace.confidence,
        position=trace.position,
        n_positions=len(rows),
        total_mass=total,
        sink_mass=next(r.mass for r in rows if r.position == 0),
        active_positions=int((mass >= threshold).sum()),
        unexpected_positions=sum(r.mass > UNEXPECTED_MASS for r in unexpected),
        unexpected_mass=float(sum(r.mass for r in unexpected)),
        expected_share=float(sum(r.share for r in rows if r.status == "expected")) if has_expectation else None,
        entropy_bits=float(-(nonzero * np.log2(nonzero)).sum()),
    )


COMPARE_METRICS = (
    ("predicted_text", "prediction"),
    ("confidence", "confidence"),
    ("sink_mass", "first-position sink mass"),
    ("active_positions", "active positions"),
    ("unexpected_positions", f"unexpected positions > {UNEXPECTED_MASS}"),
    ("unexpected_mass", "unexpected mass"),
    ("expected_share", "expected share"),
    ("entropy_bits", "attention entropy (bits)"),
    ("total_mass", "total mass (layers x heads)"),
)


def compare(a: Trace, b: Trace) -> list[tuple[str, object, object]]:
    """Side-by-side (label, value in a, value in b) rows of the seed's comparison table."""
    sa, sb = summarize(a), summarize(b)
    return [(label, getattr(sa, key), getattr(sb, key)) for key, label in COMPARE_METRICS]
