"""Read a trace file back into a Trace: JSONL ("lmxray.trace/1", legacy rocmforge files) or .safetensors.

Streams JSONL line by line and validates every record against schema.json, so a bad line
is reported as ``file:line`` naming the field, before anything is built from it.
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Iterator
from pathlib import Path

from lmxray.errors import LmxrayError
from lmxray.special import device_kind
from lmxray.trace.build import FIX, RecordBuilder
from lmxray.trace.legacy import LEGACY_FIX, LegacyBuilder
from lmxray.trace.schema import describe as _describe
from lmxray.trace.schema import first_error, load_schema, meta_error, validator as _validator  # noqa: F401
from lmxray.trace.schema import NODE_COMPONENTS
from lmxray.trace.types import SCHEMA, Trace

DENSE_SUFFIX = ".safetensors"
_COMPONENT_SET = frozenset(NODE_COMPONENTS)
_EDGE_KEYS = frozenset({"record", "kind", "src_component", "src_layer", "src_position", "src_token_id",
                        "dst_component", "dst_layer", "dst_position", "dst_token_id", "weight", "head_id"})
_edge_ints = operator.itemgetter(
    "src_layer", "src_position", "src_token_id", "dst_layer", "dst_position", "dst_token_id")
_INT = {int}
_NODE_KEYS = frozenset({"record", "component", "layer", "position", "token_id", "head_id", "norm", "values"})
_LOGITS_KEYS = frozenset({"record", "component", "layer", "position", "token_id", "top_k", "target_prob"})


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


def _bad_constant(name: str):
    raise ValueError(f"{name} is not allowed in a trace")


_DECODER = json.JSONDecoder(parse_constant=_bad_constant)  # one decoder for every line; refuses NaN/Infinity


def iter_records(path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for every record of a trace file, validating each as it streams."""
    path = trace_path(path)
    f = open_input(path, "r", encoding="utf-8-sig")  # -sig: tolerate a BOM; closed below
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
                except RecursionError:
                    raise LmxrayError(f"{path}:{lineno}: JSON nested too deeply to read", fix) from None
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
                if kind == "meta":
                    problem = meta_error(_validator(name), rec)
                else:
                    err = first_error(_validator(name), rec)
                    problem = None if err is None else _describe(err, kind)
                if problem is not None:
                    raise LmxrayError(f"{path}:{lineno}: {problem}", fix)
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


def trace_path(path) -> Path:
    """``path`` as a Path, or a one-line error for what cannot name a file (None, a number, an empty string)."""
    if not isinstance(path, (str, os.PathLike)) or str(path) == "":
        raise LmxrayError(f"path must name a trace file, got {path!r}", "pass the path of a .jsonl or .safetensors trace")
    kind = device_kind(path)
    if kind:  # /dev/zero would be read forever; a pipe is read
        raise LmxrayError(f"{path} is {kind}, not a trace file", "pass the path of a .jsonl or .safetensors trace")
    return Path(path)


def open_input(path: Path, mode: str = "rb", **kwargs):
    """``open(path)`` for reading a trace, with the OS's refusals as one-line errors."""
    try:
        return open(path, mode, **kwargs)  # noqa: SIM115 (the caller closes it)
    except FileNotFoundError:
        raise LmxrayError(f"cannot read {path}: no such file", "check the path, or make one with `lmxray trace`") \
            from None
    except IsADirectoryError:
        raise LmxrayError(f"cannot read {path}: it is a folder, not a trace file", "pass a trace file") from None
    except OSError as e:
        raise LmxrayError(f"cannot read {path}: {e.strerror or e}", "check the path and its permissions") from None


def read_trace(path) -> Trace:
    """Read a trace file (.safetensors by its suffix; else lmxray.trace/1 or legacy rocmforge JSONL) into a Trace."""
    path = trace_path(path)
    if path.suffix.lower() == DENSE_SUFFIX:
        from lmxray.trace.dense import read_dense

        return read_dense(path)
    records = iter_records(path)
    _, meta = next(records)  # iter_records raises LmxrayError on an empty file
    builder = (RecordBuilder if "schema" in meta else LegacyBuilder)(path, meta)
    for lineno, rec in records:
        builder.add(lineno, rec)
    return builder.build()
