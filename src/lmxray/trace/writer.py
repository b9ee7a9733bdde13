"""Write a Trace as JSONL ("lmxray.trace/1"): one meta line, then node lines, then edge lines.

The file appears atomically (temp file in the same directory, fsync, rename), so a
failed write never leaves a half-written trace behind. The meta record announces how
many records of each kind follow, so a reader notices a copy cut short at a line
boundary. See docs/trace-format.md.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from lmxray.atomic import atomic_output, output_target
from lmxray.errors import LmxrayError
from lmxray.trace.fields import DEFAULT_THRESHOLD
from lmxray.trace.meta import SIGNIFICANT_DIGITS, meta_record, round_float, round_list  # noqa: F401  (re-exported)
from lmxray.trace.types import COMPONENTS, PER_HEAD_COMPONENTS, Trace


def resolve_threshold(trace: Trace, threshold: float | None) -> float:
    """The edge threshold to use: the argument, else the capture plan's, else DEFAULT_THRESHOLD."""
    if threshold is None:
        threshold = trace.capture.get("threshold", DEFAULT_THRESHOLD)
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise LmxrayError(f"threshold must be a number, got {threshold!r}", "pass e.g. --threshold 0.01") from None
    if not math.isfinite(threshold) or threshold < 0:
        raise LmxrayError(f"threshold must be a finite number >= 0, got {threshold}", "pass e.g. --threshold 0.01")
    return threshold


def _nonneg(p: int, n: int) -> int:
    return p + n if p < 0 else p


def _positions_axis(trace: Trace, size: int, what: str) -> list[int]:
    """Real token positions along a position axis of ``size`` entries (all T, or the captured ones)."""
    t = trace.n_tokens
    if size == t:
        return list(range(t))
    wanted = trace.capture.get("positions")
    if wanted is not None:
        resolved = sorted({_nonneg(int(p), t) for p in wanted})
        if len(resolved) == size:
            return resolved
    raise LmxrayError(
        f"cannot write {what}: its position axis has {size} entries but the prompt has {t} tokens",
        "store component and lens arrays over all positions (NaN where not captured)",
    )


def _meta(trace: Trace, threshold: float) -> dict:
    """The meta record; its threshold is the larger of this write's and the one the maps were read at."""
    if trace.maps_threshold is not None:
        threshold = max(threshold, float(trace.maps_threshold))
    return meta_record(
        trace, "jsonl", threshold=threshold,
        attention_mass=None if trace.attention_mass is None else round_list(trace.attention_mass),
        entropy=None if trace.entropy is None else round_list(trace.entropy),
    )


def _component_nodes(trace: Trace, name: str) -> Iterator[dict]:
    data = trace.components[name]
    norm = np.asarray(data.norm)
    values = None if data.values is None else np.asarray(data.values)
    if values is not None and values.shape[-1] == 0:
        values = None
    per_head = name in PER_HEAD_COMPONENTS
    if norm.ndim != (3 if per_head else 2):
        raise LmxrayError(
            f"cannot write component {name!r}: norm has shape {norm.shape}",
            "expected [layer, pos, head] for query/key/value and [layer, pos] otherwise",
        )
    layers = [0] if name == "input_embedding" else [int(x) for x in trace.layers]
    if norm.shape[0] != len(layers):
        raise LmxrayError(
            f"cannot write component {name!r}: {norm.shape[0]} layers on axis 0 but trace.layers has {len(layers)}",
            "keep the layer axis in step with trace.layers (size 1 for input_embedding)",
        )
    positions = _positions_axis(trace, norm.shape[1], f"component {name!r}")
    token_ids = trace.token_ids
    for li, layer in enumerate(layers):
        for pi, pos in enumerate(positions):
            heads = range(norm.shape[2]) if per_head else (None,)
            for h in heads:
                idx = (li, pi) if h is None else (li, pi, h)
                n = round_float(norm[idx])
                if n is None:  # not captured here
                    continue
                rec = {"record": "node", "component": name, "layer": layer, "position": pos,
                       "token_id": int(token_ids[pos])}
                if h is not None:
                    rec["head_id"] = h
                rec["norm"] = n
                if values is not None:
                    rec["values"] = round_list(values[idx])
                yield rec


def _lens_nodes(trace: Trace) -> Iterator[dict]:
    lens = trace.lens
    top_ids = np.asarray(lens.top_ids)
    top_probs = np.asarray(lens.top_probs)
    target = np.asarray(lens.target_prob)
    rank = None if lens.target_rank is None else np.asarray(lens.target_rank)
    positions = _positions_axis(trace, top_ids.shape[1], "the logit lens")
    for li, layer in enumerate(trace.layers):
        for pi, pos in enumerate(positions):
            scores = [
                {"token_id": int(i), "prob": p}
                for i, p in zip(top_ids[li, pi].tolist(), (round_float(x) for x in top_probs[li, pi]))
                if i >= 0 and p is not None
            ]
            tp = round_float(target[li, pi])
            if not scores and tp is None:  # not captured here
                continue
            rec = {"record": "node", "component": "logits", "layer": int(layer), "position": pos,
                   "token_id": int(trace.token_ids[pos]), "top_k": scores, "target_prob": tp}
            if rank is not None and rank[li, pi] >= 1:
                rec["target_rank"] = int(rank[li, pi])
            yield rec


def _edges(trace: Trace, threshold: float) -> Iterator[dict]:
    tok = trace.token_ids

    def edge(layer, q, k, w, head=None) -> dict:
        rec = {"record": "edge", "kind": "attention", "src_component": "query", "src_layer": layer,
               "src_position": q, "src_token_id": int(tok[q]), "dst_component": "value",
               "dst_layer": layer, "dst_position": k, "dst_token_id": int(tok[k]), "weight": round_float(w)}
        if head is not None:
            rec["head_id"] = head
        return rec

    def keep(a: np.ndarray) -> np.ndarray:  # written: finite weight >= threshold and > 0
        with np.errstate(invalid="ignore"):
            return np.isfinite(a) & (a >= threshold) & (a > 0)

    if trace.attention is not None:
        for li, layer in enumerate(trace.layers):
            a = np.asarray(trace.attention[li])
            for q, k in zip(*np.nonzero(keep(a))):
                yield edge(int(layer), int(q), int(k), a[q, k])
    if trace.attention_heads is not None:
        for li, layer in enumerate(trace.layers):
            for hi, head in enumerate(trace.heads):
                a = np.asarray(trace.attention_heads[li, hi])
                for q, k in zip(*np.nonzero(keep(a))):
                    yield edge(int(layer), int(q), int(k), a[q, k], int(head))


def trace_records(trace: Trace, threshold: float | None = None, extra: Iterable[dict] = ()) -> Iterator[dict]:
    """The trace's records in file order: meta, component nodes, logits nodes, confidence node, edges, ``extra``.

    ``extra`` carries further record types (``flow``: lmxray.flow) written after the edges.
    """
    threshold = resolve_threshold(trace, threshold)
    yield _meta(trace, threshold)
    for name in COMPONENTS:
        if name in trace.components:
            yield from _component_nodes(trace, name)
    if trace.lens is not None:
        yield from _lens_nodes(trace)
    conf = round_float(trace.confidence)
    last_layer = max(int(trace.model.n_layers) - 1, max(trace.layers, default=0))
    yield {"record": "node", "component": "confidence", "layer": last_layer,
           "position": _nonneg(int(trace.position), trace.n_tokens), "token_id": int(trace.predicted_token),
           "norm": conf, "values": [conf]}
    yield from _edges(trace, threshold)
    yield from extra


_EDGE_LINE = (
    '{{"record":"edge","kind":"attention","src_component":"query","src_layer":{src_layer},'
    '"src_position":{src_position},"src_token_id":{src_token_id},"dst_component":"value",'
    '"dst_layer":{dst_layer},"dst_position":{dst_position},"dst_token_id":{dst_token_id},"weight":{weight!r}'
)


def format_record(rec: dict) -> str:
    """One record as a compact JSON line (no newline); edges, the bulk of a file, take a faster path."""
    if rec["record"] == "edge" and type(rec["weight"]) is float and len(rec) in (12, 13):
        line = _EDGE_LINE.format(**rec)  # same text json.dumps gives: ints, and float repr for the weight
        return line + (f',"head_id":{rec["head_id"]:d}}}' if "head_id" in rec else "}")
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


RECORD_KINDS = ("node", "edge", "flow")  # what may follow the meta record; the meta's "records" counts each


def _write_lines(records: Iterable[dict], f) -> Counter:
    """Write records as JSON lines in bounded batches; return how many of each kind were written."""
    counts: Counter = Counter()
    batch: list[str] = []
    for rec in records:
        counts[rec["record"]] += 1
        batch.append(format_record(rec))
        if len(batch) >= 4096:  # bounded buffer: stream, but not one write call per line
            f.write("\n".join(batch) + "\n")
            batch.clear()
    if batch:
        f.write("\n".join(batch) + "\n")
    return counts


def check_writable(path: Path) -> None:
    """Refuse, before writing anything, a target whose directory is missing or not writable."""
    parent = path.parent
    if path.is_dir():
        raise LmxrayError(f"cannot write {path}: it is a directory", "choose a writable output path")
    if not parent.is_dir():
        why = "is not a directory" if parent.exists() else "does not exist"
        raise LmxrayError(f"cannot write {path}: directory {parent} {why}", "choose a writable output path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LmxrayError(f"cannot write {path}: directory {parent} is not writable", "choose a writable output path")
    try:  # the real test (a read-only mount, /proc, ...): create and remove a temporary sibling
        fd, probe = tempfile.mkstemp(dir=parent, prefix=path.name + ".tmp")
    except OSError as e:
        raise LmxrayError(f"cannot write {path}: {e.strerror or e}", "choose a writable output path") from None
    os.close(fd)
    os.unlink(probe)


def write_trace(trace: Trace, path, threshold: float | None = None, extra: Iterable[dict] = ()) -> None:
    """Write ``trace`` to ``path`` as JSONL, atomically; edges below ``threshold`` are left out; ``extra`` records last.

    The records after the meta line stream to a scratch file first, counted by kind;
    the meta line, with those counts, then goes in front of them.
    """
    path = Path(path)
    target = output_target(path)  # a device, FIFO or folder is refused before any work
    check_writable(target)
    threshold = resolve_threshold(trace, threshold)
    records = trace_records(trace, threshold, extra)
    meta = next(records)
    try:
        with tempfile.TemporaryFile("w+", encoding="utf-8", dir=target.parent) as body:
            counts = _write_lines(records, body)
            meta["records"] = {kind: counts.get(kind, 0) for kind in RECORD_KINDS}
            with atomic_output(target) as f:
                f.write(format_record(meta) + "\n")
                body.seek(0)
                shutil.copyfileobj(body, f, 2**20)
                f.flush()
                os.fsync(f.fileno())
    except OSError as e:
        raise LmxrayError(f"cannot write {path}: {e.strerror or e}", "free disk space or choose another output path") \
            from e
