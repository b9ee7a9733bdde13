"""Flow: the decomposition of one prompt as numpy arrays ``[layer, position, source]``, and its trace records."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmxray.trace.types import ModelInfo, TokenScore, Trace

AXES = ("layer", "position", "source")  # the axes of Flow.attention / .mlp / .total


@dataclass
class LogitAttribution:
    """Each source's direct contribution to one token's final logit at the flow's position."""

    token_id: int
    text: str
    logit: float  # the model's final logit of the token (softcapped where the model caps)
    contributions: np.ndarray  # [source]: sums to ``logit``; zero for sources after the position

    @property
    def total(self) -> float:
        return float(self.contributions.astype(np.float64).sum())


@dataclass
class Contrast:
    """Each source's direct contribution to ``logit(a) - logit(b)`` at the flow's position (sums to ``difference``)."""

    a: LogitAttribution
    b: LogitAttribution

    @property
    def difference(self) -> float:
        return self.a.logit - self.b.logit

    @property
    def contributions(self) -> np.ndarray:
        return self.a.contributions.astype(np.float64) - self.b.contributions.astype(np.float64)

    @property
    def text(self) -> str:
        return f"{self.a.text!r} - {self.b.text!r}"


@dataclass
class Flow:
    """Per-source contributions to the residual stream of one prompt, and the direct logit attribution.

    The source axis lists ``sources`` (prompt tokens, or groups of them) and ends with ``"<bias>"``,
    which holds every bias and constant term. Norms are L2 norms of the contribution vectors.
    """

    model: ModelInfo
    prompt: str
    token_ids: list[int]
    tokens: list[str]
    position: int  # the position the attribution (and the CLI table) looks at
    sources: list[str]  # label of each entry of the source axis (bias last)
    groups: list[tuple[int, int]]  # token range [a, b) of each source but the bias
    attention: np.ndarray  # [layer, position, source]: norm of what attention added through the source
    mlp: np.ndarray  # [layer, position, source]: norm of what the MLP added
    total: np.ndarray  # [layer, position, source]: norm of the source's contribution to the residual after the layer
    error: np.ndarray  # [layer]: max relative error of the sum over sources against the true residual
    logits: list[LogitAttribution]  # the predicted token first, then tokens asked for
    top_k: list[TokenScore] = field(default_factory=list)
    trace: Trace | None = None  # the same forward pass as a trace (head-summed attention), for saving
    axes: tuple[str, ...] = AXES
    versus: tuple[int, int] | None = None  # token ids (A, B) of the contrastive attribution, when asked for

    @property
    def contrast(self) -> Contrast | None:
        """Attribution of ``logit(A) - logit(B)``: the difference of the two tokens' attributions (linear, exact)."""
        if self.versus is None:
            return None
        by_id = {a.token_id: a for a in self.logits}
        return Contrast(by_id[self.versus[0]], by_id[self.versus[1]])

    @property
    def max_error(self) -> float:
        return float(np.max(self.error)) if self.error.size else 0.0

    def shares(self, kind: str = "total") -> np.ndarray:
        """``attention``, ``mlp`` or ``total`` norms divided by their sum over sources (each row sums to 1)."""
        norms = getattr(self, kind).astype(np.float64)
        sums = norms.sum(-1, keepdims=True)
        return np.divide(norms, sums, out=np.zeros_like(norms), where=sums > 0)

    def reached(self, position: int) -> int:
        """How many token sources (groups) start at or before ``position``."""
        return sum(1 for a, _ in self.groups if a <= position)

    def save(self, path, threshold: float | None = None) -> None:
        """Write the trace of the same pass plus the flow records, atomically (docs/trace-format.md)."""
        from lmxray.atomic import output_target
        from lmxray.trace.writer import write_trace

        write_trace(self.trace, output_target(path), threshold=threshold, extra=flow_records(self))


def _rounded(a) -> list:
    from lmxray.trace.writer import round_list

    return round_list(a)


def flow_records(flow: Flow):
    """The ``flow`` records: one ``sources`` header, one ``residual`` per (layer, position), one ``logit`` per token."""
    from lmxray.trace.writer import round_float

    last = flow.attention.shape[0] - 1
    yield {"record": "flow", "kind": "sources", "position": flow.position, "sources": list(flow.sources),
           "groups": [[a, b] for a, b in flow.groups], "error": _rounded(flow.error),
           "max_error": round_float(flow.max_error),
           **({} if flow.versus is None else {"versus": [int(t) for t in flow.versus]})}
    for layer in range(flow.attention.shape[0]):
        for pos in range(flow.attention.shape[1]):
            keep = list(range(flow.reached(pos))) + [len(flow.sources) - 1]
            yield {"record": "flow", "kind": "residual", "layer": layer, "position": pos,
                   "token_id": int(flow.token_ids[pos]),
                   "attention": _rounded(flow.attention[layer, pos, keep]),
                   "mlp": _rounded(flow.mlp[layer, pos, keep]), "total": _rounded(flow.total[layer, pos, keep])}
    for att in flow.logits:
        yield {"record": "flow", "kind": "logit", "layer": last, "position": flow.position,
               "token_id": int(att.token_id), "text": att.text, "logit": round_float(att.logit),
               "contributions": _rounded(att.contributions)}


def is_flow_file(path) -> bool:
    """Whether a regular JSONL trace file's meta record counts flow records (a pipe or other file: False)."""
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file() or path.suffix.lower() == ".safetensors":
        return False
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.loads(f.readline())
        return isinstance(meta, dict) and int((meta.get("records") or {}).get("flow", 0)) > 0
    except (OSError, ValueError, TypeError, AttributeError):
        return False  # the trace reader gives the one-line error


def read_flow(path) -> Flow:
    """Read a trace file written by ``Flow.save`` (or ``lmxray flow --out``) back into a Flow."""
    from lmxray.errors import LmxrayError
    from lmxray.trace.reader import iter_records, read_trace

    trace = read_trace(path)
    header, residual, logits = None, [], []
    for _, rec in iter_records(path):
        if rec["record"] == "flow":
            if rec["kind"] == "sources":
                header = rec
            elif rec["kind"] == "residual":
                residual.append(rec)
            else:
                logits.append(rec)
    if header is None:
        raise LmxrayError(f"{path} holds no flow records", "write one with `lmxray flow PROMPT --out FILE`")
    n_layers = 1 + max((r["layer"] for r in residual), default=-1)
    shape = (n_layers, trace.n_tokens, len(header["sources"]))
    arrays = {k: np.zeros(shape, dtype=np.float32) for k in ("attention", "mlp", "total")}
    for rec in residual:
        n = len(rec["total"]) - 1
        for k, a in arrays.items():
            a[rec["layer"], rec["position"], list(range(n)) + [-1]] = rec[k]
    return Flow(
        model=trace.model, prompt=trace.prompt, token_ids=trace.token_ids, tokens=trace.tokens,
        position=header["position"], sources=header["sources"], groups=[tuple(g) for g in header["groups"]],
        error=np.array(header["error"], dtype=np.float64),
        logits=[LogitAttribution(r["token_id"], r["text"], r["logit"], np.array(r["contributions"], dtype=np.float64))
                for r in logits],
        top_k=trace.top_k, trace=trace, versus=_versus(header, logits), **arrays,
    )


def _versus(header: dict, logits: list[dict]) -> tuple[int, int] | None:
    """The contrast pair of the header, kept only when both tokens have a logit record."""
    pair = header.get("versus")
    ids = {r["token_id"] for r in logits}
    if isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, int) and t in ids for t in pair):
        return int(pair[0]), int(pair[1])
    return None
