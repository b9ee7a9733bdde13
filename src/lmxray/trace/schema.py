"""The shipped JSON Schema (schema.json): loading, compiled validators, and its drift from the field tables.

schema.json is what other tools read; the tables in fields.py and meta.py are what lmxray
writes. ``schema_drift`` lists every place the two disagree (a test keeps that list empty).
"""

from __future__ import annotations

import functools
import importlib.resources
import json

import jsonschema

from lmxray.trace.fields import COMPONENTS
from lmxray.trace.meta import meta_schema, model_schema

NODE_COMPONENTS = (*COMPONENTS, "logits", "confidence")  # what a node record's "component" may be


@functools.cache
def load_schema() -> dict:
    """The JSON Schema of one record line, shipped as package data (lmxray/trace/schema.json)."""
    text = importlib.resources.files("lmxray.trace").joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """A compiled validator for one definition of schema.json (e.g. "strict_edge")."""
    schema = load_schema()
    sub = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{name}"}
    return jsonschema.Draft202012Validator(sub)


@functools.cache
def header_validator() -> jsonschema.protocols.Validator:
    """A validator for the meta object in a .safetensors header (the META table's "both"/"safetensors" rows)."""
    schema = load_schema()
    return jsonschema.Draft202012Validator({"$schema": schema["$schema"], "$defs": schema["$defs"],
                                            **meta_schema("safetensors")})


def describe(err: jsonschema.ValidationError, kind: str) -> str:
    """One line naming the offending field of a schema error."""
    path = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "required":
        missing = [f for f in err.validator_value if f not in err.instance]
        where = f" (in '{path}')" if path else ""
        return f"{kind} record is missing the required field '{missing[0] if missing else '?'}'{where}"
    msg = " ".join(err.message.split())
    msg = msg if len(msg) <= 160 else msg[:157] + "..."
    return f"{kind} record field '{path}': {msg}" if path else f"{kind} record: {msg}"


def first_error(v: jsonschema.protocols.Validator, instance) -> jsonschema.ValidationError | None:
    """The most relevant schema error of ``instance``, or None; a structure too deep to check is an error too."""
    try:
        return jsonschema.exceptions.best_match(v.iter_errors(instance))
    except RecursionError:
        return jsonschema.ValidationError("nested too deeply to check")


def schema_drift(schema: dict | None = None) -> list[str]:
    """Where schema.json disagrees with the field tables: one line per difference (empty: in step)."""
    defs = (schema or load_schema())["$defs"]
    out = []
    if tuple(defs["component"]["enum"]) != NODE_COMPONENTS:
        out.append(f"$defs.component.enum is {defs['component']['enum']}, the table says {list(NODE_COMPONENTS)}")
    for name, want in (("strict_meta", meta_schema("jsonl")), ("model", model_schema())):
        got = defs[name]
        if sorted(got.get("required", [])) != sorted(want["required"]):
            out.append(f"$defs.{name}.required is {got.get('required')}, the table says {want['required']}")
        for key in sorted(set(got.get("properties", {})) | set(want["properties"])):
            g, w = got.get("properties", {}).get(key), want["properties"].get(key)
            if g != w:
                out.append(f"$defs.{name}.properties.{key} is {json.dumps(g)}, the table says {json.dumps(w)}")
    return out


_BULK = {"token_ids": (int, "an integer >= 0"), "tokens": (str, "a string")}  # long meta lists, checked in Python
_DENSE = ("entropy", "attention_mass")  # nested number lists: the reader checks their shape and every value


def meta_error(v: jsonschema.protocols.Validator, meta: dict) -> str | None:
    """The first problem of a meta object, as ``describe`` words; None when valid.

    jsonschema walks long lists item by item (tens of ms for 2,048 tokens), so the token lists are
    checked here in Python and the dense number lists by the reader, which checks every value anyway.
    """
    light = {k: [] if (k in _BULK or k in _DENSE) and type(x) is list else x for k, x in meta.items()}
    err = first_error(v, light)
    if err is not None:
        return describe(err, "meta")
    for key, (kind, what) in _BULK.items():
        for i, x in enumerate(meta.get(key) if type(meta.get(key)) is list else ()):
            if type(x) is not kind or (kind is int and x < 0):
                return f"meta record field '{key}.{i}': {x!r} is not {what}"
    return None
