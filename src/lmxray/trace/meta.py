"""The meta record: its fields in one table, built from a Trace, and checked against itself when read.

JSONL writes it as the first line; .safetensors keeps it as JSON in the header. Reading checks
every index in it (position, layers, heads, token ids) against the sizes it declares.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from lmxray.errors import LmxrayError
from lmxray.trace.fields import SCHEMA
from lmxray.trace.types import ModelInfo, TokenScore, Trace

SIGNIFICANT_DIGITS = 7  # JSONL floats are written with this many significant digits
MAX_INDEX = 2**31 - 1  # no count or index in a trace is larger (token ids, layers, heads, positions)
MAX_HEADS = 4096  # no model has more layers or heads per layer (the largest have a few hundred)

_COUNTS = {"type": "array", "items": {"$ref": "#/$defs/count"}}
_FLOATS = {"type": "array", "items": {"$ref": "#/$defs/float_or_null"}}


@dataclass(frozen=True)
class MetaField:
    """One key of the meta record: its JSON Schema, the Trace attribute it holds, where it is written."""

    key: str
    schema: dict  # JSON Schema of the value; "$ref"s point into schema.json's $defs
    attr: str | None = None  # Trace attribute it is read into (None: derived, or about the file)
    required: bool = True
    formats: str = "both"  # "both", "jsonl" (only the JSONL meta line) or "safetensors" (only the header)


META: tuple[MetaField, ...] = (
    MetaField("record", {"const": "meta"}),
    MetaField("schema", {"const": SCHEMA}),
    MetaField("model", {"$ref": "#/$defs/model"}, "model"),
    MetaField("prompt", {"type": "string"}, "prompt"),
    MetaField("token_ids", _COUNTS, "token_ids"),
    MetaField("tokens", {"type": "array", "items": {"type": "string"}}, "tokens"),
    MetaField("position", {"$ref": "#/$defs/position"}, "position"),
    MetaField("predicted_token", {"$ref": "#/$defs/count"}),
    MetaField("predicted_text", {"type": "string"}),
    MetaField("confidence", {"$ref": "#/$defs/prob"}),
    MetaField("top_k", {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/token_score"}}, "top_k"),
    MetaField("expected_attention", {
        "type": "object", "propertyNames": {"pattern": "^[0-9]+$"},
        "additionalProperties": {"type": "array", "items": {"$ref": "#/$defs/position"}}}, "expected_attention"),
    MetaField("capture", {"type": "object"}, "capture"),
    MetaField("threshold", {"type": "number", "minimum": 0}, formats="jsonl"),
    MetaField("maps_threshold", {"type": ["number", "null"], "minimum": 0}, "maps_threshold", required=False,
              formats="safetensors"),
    MetaField("layers", _COUNTS, "layers"),
    MetaField("heads", _COUNTS, "heads"),
    MetaField("attention_mass", {"oneOf": [{"type": "null"}, _FLOATS]}, "attention_mass", formats="jsonl"),
    MetaField("entropy", {"type": ["array", "null"], "items": {"type": "array", "items": _FLOATS}}, "entropy",
              required=False, formats="jsonl"),
    MetaField("lmxray_version", {"type": "string"}, "version"),
    MetaField("created", {"type": "string"}, "created"),
    MetaField("records", {
        "description": "How many records of each kind follow the meta record; a reader that counts fewer knows "
                       "the file was cut short. Optional: files from earlier lmxray builds lack it.",
        "type": "object",
        "properties": {"node": {"$ref": "#/$defs/count"}, "edge": {"$ref": "#/$defs/count"},
                       "flow": {"$ref": "#/$defs/count"}},
        "additionalProperties": False}, required=False, formats="jsonl"),
)
MODEL_SCHEMA = {"str": {"type": "string"}, "int": {"$ref": "#/$defs/count"},
                "str | None": {"type": ["string", "null"]}}  # ModelInfo annotation -> JSON Schema of the value


def meta_schema(fmt: str) -> dict:
    """The JSON Schema of the meta object in ``fmt`` ("jsonl" or "safetensors"), from the META table."""
    rows = [m for m in META if m.formats in ("both", fmt)]
    return {"type": "object", "required": [m.key for m in rows if m.required],
            "properties": {m.key: m.schema for m in rows}}


def model_schema() -> dict:
    """The JSON Schema of the meta record's model object, from the ModelInfo dataclass."""
    fields = dataclasses.fields(ModelInfo)
    return {"type": "object", "required": [f.name for f in fields],
            "properties": {f.name: MODEL_SCHEMA[f.type] for f in fields}}


def round_float(x) -> float | None:
    """``x`` rounded to SIGNIFICANT_DIGITS significant digits; None when not finite (never NaN in JSON)."""
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(f"{x:.{SIGNIFICANT_DIGITS}g}")


def round_list(a) -> list:
    """A (nested) array as nested lists of rounded floats, None where not finite."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return round_float(a)
    if a.ndim == 1:
        return [round_float(x) for x in a.tolist()]
    return [round_list(row) for row in a]


def _exact(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def jsonable(obj, number=round_float):
    """Tuples, numpy scalars and arrays turned into plain JSON values; floats through ``number``."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v, number) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, number) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist(), number)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return number(obj)
    return obj


def _nonneg(p: int, n: int) -> int:
    return p + n if p < 0 else p


def _version() -> str:
    """This lmxray's version, from the installed package metadata (trace/ does not import the package root)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lmxray")
    except PackageNotFoundError:
        return "unknown"


def meta_record(trace: Trace, fmt: str, **extra) -> dict:
    """The meta object of ``trace`` for ``fmt``: JSONL rounds floats to 7 digits, .safetensors keeps them exact.

    ``extra`` supplies the fields that are about the file, not the trace (``threshold``, ``entropy``...).
    """
    number = round_float if fmt == "jsonl" else _exact
    t = trace.n_tokens
    m = trace.model
    if not trace.top_k:
        raise LmxrayError("cannot write a trace without top_k predictions", "trace the prompt again")
    if any(s.token_id < 0 or not math.isfinite(s.prob) for s in trace.top_k):
        raise LmxrayError("cannot write a trace whose prediction is unknown (a legacy rocmforge file?)",
                          "legacy files can be read but not rewritten; trace the prompt with lmxray")
    values = {
        "record": "meta", "schema": SCHEMA,
        "model": {f.name: (int(v) if f.type == "int" else v)
                  for f in dataclasses.fields(ModelInfo) for v in [getattr(m, f.name)]},
        "prompt": trace.prompt,
        "token_ids": [int(i) for i in trace.token_ids],
        "tokens": list(trace.tokens),
        "position": _nonneg(int(trace.position), t),
        "predicted_token": int(trace.predicted_token),
        "predicted_text": trace.predicted_text,
        "confidence": number(trace.confidence),
        "top_k": [{"token_id": int(s.token_id), "text": s.text, "prob": number(s.prob)} for s in trace.top_k],
        "expected_attention": {
            str(_nonneg(int(q), t)): [_nonneg(int(k), t) for k in ks]
            for q, ks in sorted(trace.expected_attention.items())
        },
        "capture": jsonable(trace.capture, number),
        "maps_threshold": trace.maps_threshold,
        "layers": [int(x) for x in trace.layers],
        "heads": [int(x) for x in trace.heads],
        "lmxray_version": trace.version or _version(),
        "created": trace.created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
    return {m.key: values[m.key] for m in META if m.formats in ("both", fmt) and m.key in values}


def _fail(where: str, what: str, fix: str):
    raise LmxrayError(f"{where}: {what}", fix)


def _check_ids(where: str, fix: str, field: str, ids, bound: int, scope: str) -> None:
    """Every id is an int in [0, bound) (bound 0: only the absolute ceiling MAX_INDEX applies)."""
    limit = bound if bound > 0 else MAX_INDEX + 1
    for i, v in enumerate(ids):
        if type(v) is not int or not 0 <= v < limit:
            item = "" if len(ids) == 1 else f" item {i}"
            _fail(where, f"field '{field}'{item} is {v!r}, not an integer in 0..{limit - 1} ({scope})", fix)


def trace_fields(meta: dict, where: str, fix: str) -> dict:
    """Trace constructor arguments from a schema-valid meta object, after checking it is consistent with itself.

    Token ids must lie within the model's vocabulary, layers and heads within the model's, positions
    within the prompt; ``where`` prefixes every error (e.g. ``"t.jsonl:1"``).
    """
    model = meta["model"]
    for key in ("n_layers", "n_heads", "n_kv_heads", "d_model", "vocab_size"):
        bound = MAX_HEADS + 1 if key in ("n_layers", "n_heads", "n_kv_heads") else 0
        _check_ids(where, fix, f"model.{key}", [model[key]], bound, "no model has more")
    ids, tokens = meta["token_ids"], meta["tokens"]
    t = len(ids)
    if t == 0:
        _fail(where, "field 'token_ids' is empty (a trace has at least one token)", fix)
    vocab = f"the model's vocab_size is {model['vocab_size']}"
    _check_ids(where, fix, "token_ids", ids, model["vocab_size"], vocab)
    if len(tokens) != t:
        _fail(where, f"field 'tokens' has {len(tokens)} items but 'token_ids' has {t}", fix)
    _check_ids(where, fix, "position", [meta["position"]], t, f"the prompt has {t} tokens")
    top = meta["top_k"]
    _check_ids(where, fix, "top_k token_id", [s["token_id"] for s in top], model["vocab_size"], vocab)
    for name, bound, what in (("layers", model["n_layers"], "layers"), ("heads", model["n_heads"], "heads")):
        values = meta[name]
        _check_ids(where, fix, name, values, bound, f"the model has {bound} {what}")
        if len(set(values)) != len(values):
            _fail(where, f"field '{name}' lists an entry twice", fix)
    expected = {}
    for q, ks in meta["expected_attention"].items():
        _check_ids(where, fix, f"expected_attention.{q}", [int(q)] + ks, t, f"the prompt has {t} tokens")
        expected[int(q)] = list(ks)
    maps_threshold = meta.get("maps_threshold", meta.get("threshold"))
    return dict(
        model=ModelInfo(**{f.name: model[f.name] for f in dataclasses.fields(ModelInfo)}),  # newer keys ignored
        prompt=meta["prompt"], token_ids=list(ids), tokens=list(tokens), position=meta["position"],
        top_k=[TokenScore(s["token_id"], s["text"], s["prob"]) for s in top],
        expected_attention=expected, capture=dict(meta["capture"]),
        layers=list(meta["layers"]), heads=list(meta["heads"]),
        version=meta["lmxray_version"], created=meta["created"],
        maps_threshold=None if maps_threshold is None else float(maps_threshold),
    )
