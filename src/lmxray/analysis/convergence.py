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
    sink_share: float = 0.0  # sink_mass / total_mass
    entropy_norm: float = 0.0  # entropy_bits / log2(n_positions): 1 = uniform over the keys, whatever the length
    active_share: float = 0.0  # active_positions / n_positions
    unexpected_share: float = 0.0  # unexpected_positions / n_positions

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
    sink = next(r.mass for r in rows if r.position == 0)
    entropy = float(-(nonzero * np.log2(nonzero)).sum())
    n_unexpected = sum(r.mass > UNEXPECTED_MASS for r in unexpected)
    active = int((mass >= threshold).sum())
    return Summary(
        prompt=trace.prompt,
        predicted_text=trace.predicted_text,
        confidence=trace.confidence,
        position=trace.position,
        n_positions=len(rows),
        total_mass=total,
        sink_mass=sink,
        active_positions=active,
        unexpected_positions=n_unexpected,
        unexpected_mass=float(sum(r.mass for r in unexpected)),
        expected_share=float(sum(r.share for r in rows if r.status == "expected")) if has_expectation else None,
        entropy_bits=entropy,
        sink_share=sink / total if total > 0 else 0.0,
        entropy_norm=entropy / np.log2(len(rows)) if len(rows) > 1 else 0.0,
        active_share=active / len(rows),
        unexpected_share=n_unexpected / len(rows),
    )


COMPARE_METRICS = (
    ("predicted_text", "prediction"),
    ("confidence", "confidence"),
    ("n_positions", "key positions (tokens up to the prediction)"),
    ("sink_mass", "first-position sink mass"),
    ("active_positions", "active positions"),
    ("unexpected_positions", f"unexpected positions > {UNEXPECTED_MASS}"),
    ("unexpected_mass", "unexpected mass"),
    ("expected_share", "expected share"),
    ("entropy_bits", "attention entropy (bits)"),
    ("total_mass", "total mass (layers x heads)"),
)
# Metrics that do not grow with the prompt's length: shares of the mass or of the key positions.
NORMALISED_METRICS = (
    ("sink_share", "first-position share of the mass"),
    ("entropy_norm", "entropy / log2(key positions)"),
    ("active_share", "active share of key positions"),
    ("unexpected_share", f"unexpected > {UNEXPECTED_MASS} share of key positions"),
)


def compare(a: Trace, b: Trace) -> list[tuple[str, object, object]]:
    """Side-by-side (label, value in a, value in b) rows: the seed's table, then the length-normalised metrics."""
    sa, sb = summarize(a), summarize(b)
    return [(label, getattr(sa, key), getattr(sb, key)) for key, label in COMPARE_METRICS + NORMALISED_METRICS]


ALIGNMENTS = ("start", "end")


@dataclass
class LayerComparison:
    """One layer of two traces' prediction-position attention (head-summed, normalised to sum to 1)."""

    layer: int  # model layer
    js_bits: float  # Jensen-Shannon divergence between the two rows, bits (0 equal, 1 disjoint)
    first_share_a: float  # share of the row on key position 0
    first_share_b: float
    entropy_norm_a: float  # row entropy / log2(key positions)
    entropy_norm_b: float


def length_warning(a: Trace, b: Trace) -> str | None:
    """One line when the prediction positions see different numbers of tokens (raw metrics then track length)."""
    na, nb = a.position + 1, b.position + 1
    if na == nb:
        return None
    return (f"A's prediction sees {na} tokens and B's {nb}: counts and entropy grow with length; read the "
            f"length-normalised rows, and per-layer JS pairs key positions aligned at the start or end (--align)")


def model_note(a: Trace, b: Trace) -> str | None:
    """One line when the traces come from different models (a random-init twin included); None for the same model."""
    ma, mb = a.model, b.model
    same = (ma.name, ma.sha256, ma.architecture, ma.n_layers, ma.d_model) == \
        (mb.name, mb.sha256, mb.architecture, mb.n_layers, mb.d_model)
    if same:
        return None
    shape = (ma.architecture, ma.n_layers, ma.d_model) == (mb.architecture, mb.n_layers, mb.d_model)
    twin = " (one is the other's random-init twin)" if shape and (ma.source == "random") != (mb.source == "random") else ""
    return f"different models: A was traced on {ma.name}, B on {mb.name}{twin}; differences mix model and prompt"


def _rows(trace: Trace) -> np.ndarray | None:
    """[layer, key] attention of the prediction position, each row normalised to sum to 1 (None without maps)."""
    if trace.attention is None:
        return None
    rows = np.asarray(trace.attention[:, trace.position, : trace.position + 1], dtype=np.float64)
    total = rows.sum(-1, keepdims=True)
    return np.divide(rows, total, out=np.zeros_like(rows), where=total > 0)


def _pad(rows: np.ndarray, width: int, align: str) -> np.ndarray:
    missing = width - rows.shape[-1]
    return np.pad(rows, [(0, 0), (0, missing) if align == "start" else (missing, 0)])


def _js_bits(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence in bits along the last axis (0 log 0 = 0)."""
    m = 0.5 * (p + q)

    def kl(x):
        return (x * np.log2(np.divide(x, m, out=np.ones_like(x), where=x > 0))).sum(-1)

    return np.clip(0.5 * kl(p) + 0.5 * kl(q), 0.0, 1.0)


def _entropy_norm(rows: np.ndarray) -> np.ndarray:
    logs = np.log2(rows, out=np.zeros_like(rows), where=rows > 0)
    n = rows.shape[-1]
    return -(rows * logs).sum(-1) / np.log2(n) if n > 1 else np.zeros(rows.shape[0])


def compare_layers(a: Trace, b: Trace, align: str = "start") -> list[LayerComparison]:
    """Per layer captured in both traces: JS divergence, first-position share and normalised entropy.

    Rows of different lengths are padded with zero mass: ``start`` pairs position 0 with 0,
    ``end`` pairs the prediction positions. Empty when a trace has no attention maps.
    """
    if align not in ALIGNMENTS:
        raise LmxrayError(f"--align {align!r} is not one of {', '.join(ALIGNMENTS)}", "pass --align start or end")
    ra, rb = _rows(a), _rows(b)
    if ra is None or rb is None:
        return []
    common = [layer for layer in a.layers if layer in b.layers]
    ra = ra[[a.layers.index(layer) for layer in common]]
    rb = rb[[b.layers.index(layer) for layer in common]]
    width = max(ra.shape[-1], rb.shape[-1])
    js = _js_bits(_pad(ra, width, align), _pad(rb, width, align))
    ea, eb = _entropy_norm(ra), _entropy_norm(rb)
    return [LayerComparison(layer, float(js[i]), float(ra[i, 0]), float(rb[i, 0]), float(ea[i]), float(eb[i]))
            for i, layer in enumerate(common)]
