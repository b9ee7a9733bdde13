"""Read JSONL traces ("lmxray.trace/1", and legacy rocmforge forward-graph files) back into a Trace.

Streams line by line and validates every record against schema.json, so a bad line
is reported as ``file:line`` naming the field, before anything is built from it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
import math
import operator
from array import array
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import numpy as np

from lmxray.errors import LmxrayError
from lmxray.trace.types import (
    COMPONENTS, PER_HEAD_COMPONENTS, SCHEMA, ComponentData, LogitLens, ModelInfo, TokenScore, Trace,
)

FIX = "regenerate the trace with `lmxray trace`"
LEGACY_FIX = "fix that line, or re-export the trace with `lmxray trace`"
_COMPONENT_SET = frozenset(COMPONENTS) | {"logits", "confidence"}
_EDGE_KEYS = frozenset({"record", "kind", "src_component", "src_layer", "src_position", "src_token_id",
                        "dst_component", "dst_layer", "dst_position", "dst_token_id", "weight", "head_id"})
_edge_ints = operator.itemgetter(
    "src_layer", "src_position", "src_token_id", "dst_layer", "dst_position", "dst_token_id")
_INT = {int}
_NODE_KEYS = frozenset({"record", "component", "layer", "position", "token_id", "head_id", "norm", "values"})
_LOGITS_KEYS = frozenset({"record", "component", "layer", "position", "token_id", "top_k", "target_prob"})


@functools.cache
def load_schema() -> dict:
    """The JSON Schema of one record line, shipped as package data (lmxray/trace/schema.json)."""
    text = importlib.resources.files("lmxray.trace").joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    """A compiled validator for one definition of schema.json (e.g. "strict_edge")."""
    schema = load_schema()
    sub = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{name}"}
    return jsonschema.Draft202012Validator(sub)


def _nat(v) -> bool:
    return type(v) is int and v >= 0


def _num(v) -> bool:
    return type(v) is float or type(v) is int


def _fast_ok(rec: dict, kind: str) -> bool:
    """True when a strict node/edge has exactly the shape the writer makes and is valid (skips jsonschema).

    Anything unusual returns False and goes through the full schema, which names the problem.
    """
    if kind == "edge":
        try:
            ints = _edge_ints(rec)
        except KeyError:
            return False
        return (rec.keys() <= _EDGE_KEYS and {*map(type, ints)} == _INT and min(ints) >= 0
                and rec.get("kind") == "attention" and rec.get("src_component") == "query"
                and rec.get("dst_component") == "value"
                and _num(w := rec.get("weight")) and w >= 0 and _nat(rec.get("head_id", 0)))
    if not (type(c := rec.get("component")) is str and c in _COMPONENT_SET and _nat(rec.get("layer"))
            and _nat(rec.get("position")) and _nat(rec.get("token_id"))):
        return False
    if rec["component"] == "logits":
        tp = rec.get("target_prob", 1)
        return ((rec.keys() == _LOGITS_KEYS or (rec.keys() == _LOGITS_KEYS | {"target_rank"}
                                                and type(rec["target_rank"]) is int and rec["target_rank"] >= 1))
                and (tp is None or (_num(tp) and 0 <= tp <= 1))
                and type(rec["top_k"]) is list
                and all(type(s) is dict and s.keys() == {"token_id", "prob"} and _nat(s["token_id"])
                        and _num(s["prob"]) and 0 <= s["prob"] <= 1 for s in rec["top_k"]))
    vals = rec.get("values", ())
    return (rec.keys() <= _NODE_KEYS and _num(n := rec.get("norm")) and n >= 0
            and _nat(rec.get("head_id", 0)) and type(vals) in (list, tuple)
            and all(v is None or _num(v) for v in vals))


def _describe(err: jsonschema.ValidationError, kind: str) -> str:
    """One line naming the offending field of a schema error."""
    path = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "required":
        missing = [f for f in err.validator_value if f not in err.instance]
        where = f" (in '{path}')" if path else ""
        return f"{kind} record is missing the required field '{missing[0] if missing else '?'}'{where}"
    msg = " ".join(err.message.split())
    msg = msg if len(msg) <= 160 else msg[:157] + "..."
    return f"{kind} record field '{path}': {msg}" if path else f"{kind} record: {msg}"


def _bad_constant(name: str):
    raise ValueError(f"{name} is not allowed in a trace")


_DECODER = json.JSONDecoder(parse_constant=_bad_constant)  # one decoder for every line; refuses NaN/Infinity


def iter_records(path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for every record of a trace file, validating each as it streams."""
    path = Path(path)
    try:
        f = open(path, encoding="utf-8-sig")  # noqa: SIM115 (closed below); -sig: tolerate a BOM
    except FileNotFoundError:
        raise LmxrayError(f"cannot read {path}: no such file", "check the path, or make one with `lmxray trace`") \
            from None
    except OSError as e:
        raise LmxrayError(f"cannot read {path}: {e.strerror or e}", "check the path and its permissions") from None
    strict: bool | None = None  # None until the meta record is seen
    announced: dict | None = None  # the meta record's count of the records that follow, when it has one
    seen = {"node": 0, "edge": 0, "flow": 0}
    lineno = 0
    with f:
        try:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                fix = FIX if strict is not False else LEGACY_FIX
                try:
                    rec = _DECODER.decode(line)
                except ValueError as e:  # JSONDecodeError or a NaN/Infinity constant
                    what = f"{e.msg} at column {e.colno}" if isinstance(e, json.JSONDecodeError) else str(e)
                    raise LmxrayError(f"{path}:{lineno}: not valid JSON ({what})", fix) from None
                if not isinstance(rec, dict):
                    raise LmxrayError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}", fix)
                kind = rec.get("record")
                if kind not in ("meta", "node", "edge", "flow"):
                    got = "it is missing" if kind is None else f"got {kind!r}"
                    what = f"field 'record' must be 'meta', 'node', 'edge' or 'flow' ({got})"
                    raise LmxrayError(f"{path}:{lineno}: {what}", fix)
                if strict is None:
                    if kind != "meta":
                        what = f"the first record is a {kind}, expected the meta record"
                        raise LmxrayError(f"{path}:{lineno}: {what}", fix)
                    strict = "schema" in rec
                    if strict and rec["schema"] != SCHEMA:
                        raise LmxrayError(
                            f"{path}:{lineno}: field 'schema' is {rec['schema']!r}; this lmxray reads {SCHEMA!r}",
                            "upgrade lmxray, or regenerate the trace with this version",
                        )
                    name = "strict_meta" if strict else "legacy_meta"
                    announced = rec.get("records") if strict else None
                elif kind == "meta":
                    raise LmxrayError(f"{path}:{lineno}: a second meta record (only the first line may be meta)", fix)
                else:
                    seen[kind] += 1
                    if kind == "flow":
                        name = "flow"
                    elif strict:
                        if _fast_ok(rec, kind):
                            yield lineno, rec
                            continue
                        name = f"strict_{kind}"
                    else:
                        name = kind
                err = jsonschema.exceptions.best_match(_validator(name).iter_errors(rec))
                if err is not None:
                    raise LmxrayError(f"{path}:{lineno}: {_describe(err, kind)}", fix)
                yield lineno, rec
        except UnicodeDecodeError:
            raise LmxrayError(f"{path}:{lineno + 1}: not UTF-8 text", "a trace is UTF-8 JSONL; " + FIX) from None
    if strict is None:
        raise LmxrayError(f"{path}: empty file (no meta record)", FIX)
    if announced is not None:
        _check_complete(path, announced, seen)


def _check_complete(path: Path, announced: dict, seen: dict) -> None:
    """The records read must be the ones the meta record announced: fewer means the file was cut short."""
    missing = {k: n - seen.get(k, 0) for k, n in announced.items() if n != seen.get(k, 0)}
    if not missing:
        return
    parts = ", ".join(f"{seen.get(k, 0)} of {announced[k]} {k} records" for k in missing)
    if any(v > 0 for v in missing.values()):
        raise LmxrayError(f"{path}: the file is cut short ({parts}; the meta record announces more)",
                          "copy the whole file again, or regenerate it with `lmxray trace`")
    raise LmxrayError(f"{path}: more records than the meta record announces ({parts})",
                      "the file was appended to or joined with another; regenerate it with `lmxray trace`")


def _floats(x) -> np.ndarray | None:
    """Nested lists of numbers (null where not finite) as a float array with NaN; None stays None."""
    return None if x is None else np.array(x, dtype=np.float64)  # numpy reads None as NaN here


class _Builder:
    """Collects records (sparsely, in compact columns) and assembles the Trace at the end."""

    def __init__(self, path: Path, meta: dict):
        self.path, self.meta, self.strict = path, meta, "schema" in meta
        self.fix = FIX if self.strict else LEGACY_FIX
        ids = meta.get("token_ids")
        self.n_tokens = len(ids) if ids is not None else None  # None: infer from positions
        self.layer_index = {l: i for i, l in enumerate(meta["layers"])} if self.strict else None
        self.head_index = {h: i for i, h in enumerate(meta["heads"])} if self.strict else None
        self.edges = {k: array("q") for k in ("layer", "q", "k", "head")}
        self.weights = array("d")
        self.nodes: dict[str, list] = {}  # component -> [(layer, pos, head, norm, values)]
        self.lens: list = []  # [(layer, pos, ids, probs, target, target_rank)]
        self.seen_ids: dict[int, int] = {}  # pos -> token id (legacy files without token_ids)
        self.confidence_node: dict | None = None
        self.max_pos = -1

    def _fail(self, lineno: int, what: str):
        raise LmxrayError(f"{self.path}:{lineno}: {what}", self.fix)

    def _pos(self, lineno: int, field: str, pos, token_id=None) -> int:
        if self.n_tokens is None:  # legacy file without token_ids: T and ids come from the records
            self.max_pos = max(self.max_pos, pos)
            if token_id is not None:
                self.seen_ids.setdefault(pos, token_id)
        elif pos >= self.n_tokens:
            self._fail(lineno, f"field '{field}' is {pos} but the meta record has {self.n_tokens} token_ids")
        return pos

    def _layer(self, lineno: int, field: str, layer: int) -> None:
        if self.strict and layer not in self.layer_index:
            self._fail(lineno, f"field '{field}' is {layer}, not one of the meta record's layers")

    def add(self, lineno: int, rec: dict) -> None:
        if rec["record"] == "flow":  # the decomposition: lmxray.flow.read_flow reads these
            return
        if rec["record"] == "edge":
            self._add_edge(lineno, rec)
        else:
            self._add_node(lineno, rec)

    def _add_edge(self, lineno: int, rec: dict) -> None:
        head = rec.get("head_id")
        if self.strict:
            layer = rec["src_layer"]
            if layer not in self.layer_index:
                self._fail(lineno, f"field 'src_layer' is {layer}, not one of the meta record's layers")
            if rec["dst_layer"] != layer:
                what = f"field 'dst_layer' is {rec['dst_layer']} but src_layer is {layer}"
                self._fail(lineno, what + " (attention stays in a layer)")
            if head is not None and head not in self.head_index:
                self._fail(lineno, f"field 'head_id' is {head}, not one of the meta record's heads")
        else:
            layer = next((rec[k] for k in ("src_layer", "layer", "dst_layer") if k in rec), 0)
        q, k = rec["src_position"], rec["dst_position"]
        if self.n_tokens is None or q >= self.n_tokens or k >= self.n_tokens:
            self._pos(lineno, "src_position", q, rec.get("src_token_id"))
            self._pos(lineno, "dst_position", k, rec.get("dst_token_id"))
        e = self.edges
        e["layer"].append(layer)
        e["q"].append(q)
        e["k"].append(k)
        e["head"].append(-1 if head is None else head)
        self.weights.append(rec["weight"])

    def _add_node(self, lineno: int, rec: dict) -> None:
        comp, layer, pos = rec["component"], rec["layer"], rec["position"]
        if pos is not None:  # legacy nodes may have no position: nothing to place
            self._pos(lineno, "position", pos, None if comp == "confidence" else rec.get("token_id"))
        if comp == "confidence":
            self.confidence_node = rec
        if pos is None or comp == "confidence":
            return
        if comp == "logits":
            if "top_k" in rec:
                self._layer(lineno, "layer", layer)
                top = rec["top_k"]
                self.lens.append((layer, pos, [s["token_id"] for s in top], [s["prob"] for s in top],
                                  rec.get("target_prob"), rec.get("target_rank", 0)))
            return
        if comp == "input_embedding":
            if self.strict and layer != 0:
                self._fail(lineno, f"field 'layer' is {layer}; input_embedding nodes have layer 0")
        else:
            self._layer(lineno, "layer", layer)
        values = rec.get("values")
        norm = rec.get("norm")
        if norm is None and values:  # legacy: the norm of what was kept
            norm = math.sqrt(sum(v * v for v in values if v is not None))
        self.nodes.setdefault(comp, []).append((layer, pos, rec.get("head_id"), norm, values))

    def _layers(self) -> list[int]:
        if self.strict:
            return list(self.meta["layers"])
        seen = set(self.edges["layer"]) | {l for l, *_ in self.lens}
        seen |= {n[0] for c, ns in self.nodes.items() if c != "input_embedding" for n in ns}
        return sorted(seen)

    def build(self) -> Trace:
        meta, strict = self.meta, self.strict
        if self.n_tokens is not None:
            token_ids = list(meta["token_ids"])
        else:
            token_ids = [self.seen_ids.get(p, 0) for p in range(self.max_pos + 1)]
        t = len(token_ids)
        layers = self._layers()
        li = {l: i for i, l in enumerate(layers)}
        attention, attention_heads, heads = self._attention(t, layers, li)
        fields = [f.name for f in dataclasses.fields(ModelInfo)]  # extra keys in a newer file are ignored
        model = ModelInfo(**{k: meta["model"][k] for k in fields}) if strict else ModelInfo(
            name="unknown", source="legacy", sha256=None, architecture="unknown",
            n_layers=max(layers) + 1 if layers else 0, n_heads=len(heads) and max(heads) + 1,
            n_kv_heads=0, d_model=0, vocab_size=0, dtype="unknown")
        return Trace(
            model=model,
            prompt=meta.get("prompt", ""),
            token_ids=token_ids,
            tokens=list(meta["tokens"]) if "tokens" in meta else [str(i) for i in token_ids],
            position=meta["position"] if strict else self._legacy_position(t),
            top_k=self._top_k(),
            expected_attention=self._expected(t),
            capture=dict(meta.get("capture", {})),
            layers=layers,
            heads=heads,
            attention=attention,
            attention_heads=attention_heads,
            entropy=_floats(meta.get("entropy")),
            components=self._components(t, layers, li, model),
            lens=self._lens(t, layers, li),
            attention_mass=_floats(meta.get("attention_mass")),
            version=meta.get("lmxray_version", ""),
            created=meta.get("created", ""),
        )

    def _attention(self, t: int, layers: list[int], li: dict):
        """Dense maps from edges: head-summed edges -> attention, per-head edges -> attention_heads.

        Legacy files carry no head-summed edges, so there every edge is also summed into ``attention``.
        """
        e = {k: np.frombuffer(v, dtype=np.int64) if len(v) else np.zeros(0, np.int64) for k, v in self.edges.items()}
        w = np.frombuffer(self.weights, dtype=np.float64) if len(self.weights) else np.zeros(0)
        lidx = np.array([li[l] for l in e["layer"].tolist()], dtype=np.int64)
        per_head = e["head"] >= 0
        capture = self.meta.get("capture", {}) if self.strict else {}
        summed = ~per_head if self.strict else np.ones_like(per_head)
        attention = attention_heads = None
        heads: list[int] = []
        if summed.any() or (capture.get("attention") and layers):
            attention = np.zeros((len(layers), t, t), dtype=np.float32)
            np.add.at(attention, (lidx[summed], e["q"][summed], e["k"][summed]), w[summed])
        if per_head.any() or (capture.get("per_head") and self.strict):
            heads = list(self.meta["heads"]) if self.strict else sorted(set(e["head"][per_head].tolist()))
            hi = {h: i for i, h in enumerate(heads)}
            hidx = np.array([hi[h] for h in e["head"][per_head].tolist()], dtype=np.int64)
            attention_heads = np.zeros((len(layers), len(heads), t, t), dtype=np.float32)
            np.add.at(attention_heads, (lidx[per_head], hidx, e["q"][per_head], e["k"][per_head]), w[per_head])
        elif self.strict:
            heads = list(self.meta["heads"])
        return attention, attention_heads, heads

    def _components(self, t: int, layers: list[int], li: dict, model: ModelInfo) -> dict[str, ComponentData]:
        out = {}
        for comp in COMPONENTS:
            nodes = self.nodes.get(comp)
            if not nodes:
                continue
            n_layers = 1 if comp == "input_embedding" else len(layers)
            shape = (n_layers, t)
            if comp in PER_HEAD_COMPONENTS:
                declared = (model.n_heads if comp == "query" else model.n_kv_heads) if self.strict else 0
                shape += (max(declared, 1 + max((n[2] or 0) for n in nodes)),)  # legacy: whole vector = head 0
            n_vals = max((len(n[4]) for n in nodes if n[4] is not None), default=0)
            norm = np.full(shape, np.nan, dtype=np.float32)
            values = np.full(shape + (n_vals,), np.nan, dtype=np.float32) if n_vals else None
            for layer, pos, head, nrm, vals in nodes:
                idx = (0 if comp == "input_embedding" else li[layer], pos)
                if len(shape) == 3:
                    idx += (head or 0,)
                norm[idx] = np.nan if nrm is None else nrm
                if vals is not None and values is not None:
                    values[idx][: len(vals)] = [np.nan if v is None else v for v in vals]
            out[comp] = ComponentData(norm=norm, values=values)
        return out

    def _lens(self, t: int, layers: list[int], li: dict) -> LogitLens | None:
        if not self.lens:
            return None
        k = max(len(ids) for _, _, ids, *_ in self.lens)
        top_ids = np.full((len(layers), t, k), -1, dtype=np.int64)
        top_probs = np.full((len(layers), t, k), np.nan, dtype=np.float32)
        target = np.full((len(layers), t), np.nan, dtype=np.float32)
        rank = np.zeros((len(layers), t), dtype=np.int32)  # 0: not recorded (files older than target_rank)
        for layer, pos, ids, probs, tp, rk in self.lens:
            top_ids[li[layer], pos, : len(ids)] = ids
            top_probs[li[layer], pos, : len(probs)] = probs
            target[li[layer], pos] = np.nan if tp is None else tp
            rank[li[layer], pos] = rk
        return LogitLens(top_ids=top_ids, top_probs=top_probs, target_prob=target,
                         target_rank=rank if rank.any() else None)

    def _top_k(self) -> list[TokenScore]:
        meta = self.meta
        if self.strict:
            return [TokenScore(s["token_id"], s["text"], s["prob"]) for s in meta["top_k"]]
        pred = meta.get("predicted_token")
        conf = meta.get("confidence")
        node = self.confidence_node
        if pred is None and node is not None:
            pred = node.get("token_id")
        if conf is None and node is not None:
            conf = node.get("norm", (node.get("values") or [None])[0])
        if pred is None and conf is None:
            return []
        token_id = pred if isinstance(pred, int) else -1
        text = pred if isinstance(pred, str) else meta.get("predicted_text", "")
        return [TokenScore(token_id, text, math.nan if conf is None else float(conf))]

    def _legacy_position(self, t: int) -> int:
        node = self.confidence_node
        if node is not None and node.get("position") is not None:
            return node["position"]
        return max(t - 1, 0)

    def _expected(self, t: int) -> dict[int, list[int]]:
        meta = self.meta
        expected = meta.get("expected_attention")
        if not self.strict and not expected and meta.get("expected_positions") is not None:
            expected = {str(self._legacy_position(t)): meta["expected_positions"]}
        res = lambda p: p + t if p < 0 else p  # noqa: E731 (legacy files may count from the end)
        return {res(int(q)): [res(k) for k in ks] for q, ks in (expected or {}).items()}


def read_trace(path) -> Trace:
    """Read a trace file (lmxray.trace/1 or legacy rocmforge JSONL) back into a Trace."""
    path = Path(path)
    records = iter_records(path)
    _, meta = next(records)  # iter_records raises LmxrayError on an empty file
    builder = _Builder(path, meta)
    for lineno, rec in records:
        builder.add(lineno, rec)
    return builder.build()
