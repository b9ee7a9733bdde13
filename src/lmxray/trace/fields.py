"""The trace schema in one table: every array a Trace holds, its axes, dtype and how each file format stores it.

The dataclasses (types.py), the JSONL writer and reader, schema.json (schema_drift), the
.safetensors format and memory estimates (field_bytes) are derived from or checked against it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

SCHEMA = "lmxray.trace/1"
DEFAULT_THRESHOLD = 0.01  # JSONL edges below this weight are not written (when neither caller nor plan says)

# Axis name -> what it counts. A field's shape is its axes' sizes, in order.
AXES = {
    "layer": "captured layers, in the order of Trace.layers",
    "embedding_layer": "always 1: input_embedding sits below layer 0",
    "head": "heads kept in per-head maps, in the order of Trace.heads",
    "model_head": "all the model's query heads (model.n_heads)",
    "kv_head": "the model's key/value heads (model.n_kv_heads)",
    "q_pos": "query positions (T; rows not captured are 0, or NaN for statistics)",
    "k_pos": "key positions (T)",
    "pos": "token positions (T)",
    "model_values": "floats kept of a d_model-wide vector (capture.n_values, or all)",
    "head_values": "floats kept of a d_head-wide vector",
    "mlp_values": "floats kept of a d_mlp-wide vector",
    "lens_k": "candidates kept by the logit lens at each layer and position",
}

# How JSONL stores a field (the sparse or inline representation of the dense array).
JSONL_KINDS = {
    "edges": "edge records without head_id, weight >= threshold (thresholded: smaller weights read back as 0)",
    "head_edges": "edge records with head_id, weight >= threshold (thresholded)",
    "meta": "nested lists inside the meta record, null where not finite",
    "nodes": "node records, one per (layer, position[, head]) whose norm is finite",
    "lens_nodes": "logits node records, one per (layer, position) the lens computed",
}


@dataclass(frozen=True)
class ArrayField:
    """One array of a Trace: where it lives, its axes, dtype, fill where not captured, and storage."""

    name: str  # attribute path on Trace: "attention", "components.query.norm", "lens.top_ids"
    axes: tuple[str, ...]
    dtype: str  # numpy dtype name: in memory and in .safetensors
    jsonl: str  # a key of JSONL_KINDS
    fill: float  # value where nothing was captured (what a reader of sparse JSONL fills in)
    per_layer: bool = False  # .safetensors: one tensor per layer ("attention.5") so one layer reads alone
    doc: str = ""

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize


# component -> (layer axis, head axis or None, width axis of the kept values, what the vector is); stack order.
COMPONENT_AXES = {
    "input_embedding": ("embedding_layer", None, "model_values", "the residual entering layer 0"),
    "query": ("layer", "model_head", "head_values", "post-norm, post-RoPE queries"),
    "key": ("layer", "kv_head", "head_values", "keys as attention receives them"),
    "value": ("layer", "kv_head", "head_values", "values as attention receives them"),
    "attention_output": ("layer", None, "model_values", "what attention adds to the residual"),
    "mlp_hidden": ("layer", None, "mlp_values", "MLP activations entering the down projection"),
    "mlp_output": ("layer", None, "model_values", "what the MLP adds to the residual"),
    "residual": ("layer", None, "model_values", "the residual leaving the layer"),
}
COMPONENTS = tuple(COMPONENT_AXES)
PER_HEAD_COMPONENTS = tuple(c for c, (_, head, _, _) in COMPONENT_AXES.items() if head is not None)


def _component_fields() -> list[ArrayField]:
    out = []
    for name, (layer, head, width, doc) in COMPONENT_AXES.items():
        axes = (layer, "pos") + ((head,) if head else ())
        out.append(ArrayField(f"components.{name}.norm", axes, "float32", "nodes", math.nan,
                              doc=f"L2 norm of {doc}"))
        out.append(ArrayField(f"components.{name}.values", axes + (width,), "float32", "nodes", math.nan,
                              doc=f"first floats of {doc}"))
    return out


ARRAYS: tuple[ArrayField, ...] = (
    ArrayField("attention", ("layer", "q_pos", "k_pos"), "float32", "edges", 0.0, per_layer=True,
               doc="attention probabilities summed over all the layer's heads"),
    ArrayField("attention_heads", ("layer", "head", "q_pos", "k_pos"), "float32", "head_edges", 0.0,
               per_layer=True, doc="attention probabilities of each kept head"),
    ArrayField("entropy", ("layer", "model_head", "q_pos"), "float32", "meta", math.nan,
               doc="entropy (nats) of each attention row"),
    ArrayField("attention_mass", ("k_pos",), "float32", "meta", math.nan,
               doc="exact attention mass from `position` to each key, summed over layers and heads"),
    *_component_fields(),
    ArrayField("lens.top_ids", ("layer", "pos", "lens_k"), "int64", "lens_nodes", -1,
               doc="logit lens: best token ids at each layer and position"),
    ArrayField("lens.top_probs", ("layer", "pos", "lens_k"), "float32", "lens_nodes", math.nan,
               doc="their probabilities"),
    ArrayField("lens.target_prob", ("layer", "pos"), "float32", "lens_nodes", math.nan,
               doc="probability of the token the full model predicts there"),
    ArrayField("lens.target_rank", ("layer", "pos"), "int32", "lens_nodes", 0,
               doc="its rank in the whole vocabulary (1 = top; 0 = not recorded)"),
)
BY_NAME = {f.name: f for f in ARRAYS}


def field_bytes(sizes: Mapping[str, int], names=None) -> dict[str, int]:
    """Bytes of each field whose axes all have a size in ``sizes`` (axis name -> size), by field name.

    For memory estimates: e.g. ``field_bytes({"layer": 30, "q_pos": 8, "k_pos": 512})["attention"]``.
    ``names`` limits the answer to those fields; a named field with an unsized axis is an error.
    """
    chosen = ARRAYS if names is None else [BY_NAME[n] for n in names]
    out = {}
    for f in chosen:
        if all(a in sizes for a in f.axes):
            out[f.name] = math.prod(int(sizes[a]) for a in f.axes) * f.itemsize
        elif names is not None:
            missing = [a for a in f.axes if a not in sizes]
            raise KeyError(f"field {f.name} needs the size of axis {missing[0]!r}")
    return out


def get_array(trace, name: str):
    """The array a field names on ``trace`` (None when absent): "lens.top_ids" -> trace.lens.top_ids."""
    parts = name.split(".")
    if parts[0] == "components":
        data = trace.components.get(parts[1])
        return None if data is None else getattr(data, parts[2])
    obj = trace
    for p in parts:
        obj = getattr(obj, p, None)
        if obj is None:
            return None
    return obj


def trace_sizes(trace) -> dict[str, int]:
    """The axis sizes the meta fields of ``trace`` fix (value widths and lens_k are free)."""
    t = len(trace.token_ids)
    return {"layer": len(trace.layers), "embedding_layer": 1, "head": len(trace.heads),
            "model_head": int(trace.model.n_heads), "kv_head": int(trace.model.n_kv_heads),
            "q_pos": t, "k_pos": t, "pos": t}


def check_shapes(shapes: Mapping[str, tuple], sizes: Mapping[str, int]) -> str | None:
    """None when every field shape fits the axis sizes (free axes must agree across fields), else the problem."""
    sizes = dict(sizes)
    for name, shape in shapes.items():
        f = BY_NAME[name]
        if len(shape) != len(f.axes):
            return f"{name} has {len(shape)} axes {tuple(shape)}, expected [{', '.join(f.axes)}]"
        for axis, n in zip(f.axes, shape):
            want = sizes.setdefault(axis, n)
            if n != want:
                return f"{name} has shape {tuple(shape)}: axis {axis!r} is {n}, expected {want} ({AXES[axis]})"
    return None


def array_shapes(trace) -> dict[str, tuple]:
    """The shape of every array ``trace`` holds, by field name (absent fields left out)."""
    out = {}
    for f in ARRAYS:
        a = get_array(trace, f.name)
        if a is not None:
            out[f.name] = tuple(np.shape(a))
    return out


def trace_problem(trace) -> str | None:
    """None when every array of ``trace`` has its field's dtype and a shape that fits the meta sizes, else why."""
    for f in ARRAYS:
        a = get_array(trace, f.name)
        if a is not None and np.asarray(a).dtype != np.dtype(f.dtype):
            return f"{f.name} has dtype {np.asarray(a).dtype}, expected {f.dtype}"
    return check_shapes(array_shapes(trace), trace_sizes(trace))
