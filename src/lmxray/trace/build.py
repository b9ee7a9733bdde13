"""Build a Trace from the records of a JSONL trace: sparse records in, dense arrays out.

Every index (layer, head, position, token id) is checked against the sizes the meta record
declares before it is stored, every number is checked to fit its float32/int array, and
every array's size is checked against free memory before it is allocated.
"""

from __future__ import annotations

import math
from array import array

import numpy as np

from lmxray.errors import LmxrayError
from lmxray.trace.fields import COMPONENTS, PER_HEAD_COMPONENTS, BY_NAME
from lmxray.trace.meta import MAX_INDEX, trace_fields
from lmxray.trace.types import ComponentData, LogitLens, Trace

FIX = "regenerate the trace with `lmxray trace`"
FLOAT32_MAX = float(np.finfo(np.float32).max)
WEIGHT_SLACK = 1e-3  # attention weights are probabilities: at most 1 per head (plus rounding)
MEMORY_SHARE = 0.5  # a reader allocates at most this share of the memory that is free


def available_memory() -> int | None:
    """Free host memory in bytes (Linux MemAvailable), or None where the system does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def allocate(where: str, shape: tuple, dtype: str, fill, what: str) -> np.ndarray:
    """``np.full(shape, fill)`` after checking its size against free memory: a refusal, not an OOM kill."""
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    free = available_memory()
    if nbytes > MEMORY_SHARE * (free if free is not None else 2**34):
        free_text = f"{free / 2**30:.1f} GiB free" if free is not None else "no memory figure"
        raise LmxrayError(f"{where}: {what} would need {nbytes / 2**30:.1f} GiB {list(shape)} ({free_text})",
                          "the sizes in the file are implausible, or read it where more memory is free")
    return np.full(shape, fill, dtype=dtype)


def nested_shape(x, depth: int) -> tuple | None:
    """The shape of ``depth`` levels of nested lists when rectangular (leaves not lists), else None."""
    shape, level = [], [x]
    for _ in range(depth):
        if not all(type(v) is list for v in level):
            return None
        sizes = {len(v) for v in level}
        if len(sizes) > 1:
            return None
        shape.append(sizes.pop() if sizes else 0)
        level = [w for v in level for w in v]
    return tuple(shape) if all(type(v) is not list for v in level) else None


def finite_floats(values, where: str, field: str, fix: str) -> list:
    """The floats of a flat list as float32-safe numbers (None -> NaN); anything larger than float32 is an error."""
    out = []
    for v in values:
        if v is None:
            out.append(math.nan)
        elif type(v) not in (int, float) or not abs(v) <= FLOAT32_MAX:
            raise LmxrayError(f"{where}: field '{field}' holds {v!r}, not a number within float32's range", fix)
        else:
            out.append(float(v))
    return out


def dense_floats(x, shape: tuple, where: str, field: str, fix: str) -> np.ndarray | None:
    """Nested lists of numbers or null as a float32 array of exactly ``shape`` (None stays None)."""
    if x is None:
        return None
    got = nested_shape(x, len(shape))
    if got != shape:
        what = "is ragged or not nested as expected" if got is None else f"has shape {list(got)}"
        raise LmxrayError(f"{where}: field '{field}' {what}; expected {list(shape)}", fix)
    flat = x
    for _ in range(len(shape) - 1):
        flat = [w for v in flat for w in v]
    return np.array(finite_floats(flat, where, field, fix), dtype=np.float32).reshape(shape)


class RecordBuilder:
    """Collects the records of one lmxray file (sparsely, in compact columns) and assembles the Trace at the end."""

    fix = FIX

    def __init__(self, path, meta: dict):
        self.path, self.meta = path, meta
        self.edges = {k: array("q") for k in ("layer", "q", "k", "head")}
        self.weights = array("d")
        self.nodes: dict[str, list] = {}  # component -> [(layer, pos, head, norm, values)]
        self.lens: list = []  # [(layer, pos, ids, probs, target, target_rank)]
        self.confidence_node: dict | None = None
        self.setup()

    def setup(self) -> None:
        """Sizes from the meta record, checked against themselves (positions within the prompt, ...)."""
        self.base = trace_fields(self.meta, f"{self.path}:1", self.fix)
        model = self.base["model"]
        self.n_tokens = len(self.base["token_ids"])
        self.vocab = model.vocab_size or MAX_INDEX + 1
        self.layer_index = {l: i for i, l in enumerate(self.base["layers"])}
        self.head_index = {h: i for i, h in enumerate(self.base["heads"])}
        self.head_bound = {"query": model.n_heads, "key": model.n_kv_heads, "value": model.n_kv_heads}
        self.max_weight = {True: 1 + WEIGHT_SLACK, False: max(model.n_heads, 1) * (1 + WEIGHT_SLACK)}

    # -- checks ----------------------------------------------------------------------------------

    def fail(self, lineno: int, what: str):
        raise LmxrayError(f"{self.path}:{lineno}: {what}", self.fix)

    def index(self, lineno: int, field: str, value, bound: int, scope: str) -> int:
        """``value`` as an index in [0, bound), or an error naming the field and the range."""
        if type(value) is float and value.is_integer() and abs(value) <= MAX_INDEX:
            value = int(value)  # JSON Schema counts 3.0 as an integer
        if type(value) is not int or not 0 <= value < bound:
            self.fail(lineno, f"field '{field}' is {value!r}, not an integer in 0..{bound - 1} ({scope})")
        return value

    def pos(self, lineno: int, field: str, value) -> int:
        return self.index(lineno, field, value, self.n_tokens, f"the meta record has {self.n_tokens} token_ids")

    def token(self, lineno: int, field: str, value) -> int:
        return self.index(lineno, field, value, self.vocab, f"the model's vocab_size is {self.vocab}")

    def layer(self, lineno: int, field: str, value) -> int:
        if value not in self.layer_index or type(value) is bool:
            self.fail(lineno, f"field '{field}' is {value!r}, not one of the meta record's layers")
        return int(value)

    def number(self, lineno: int, field: str, value, low: float = -FLOAT32_MAX, high: float = FLOAT32_MAX) -> float:
        if type(value) not in (int, float) or not low <= value <= high:
            self.fail(lineno, f"field '{field}' is {value!r}, not a number in [{low:g}, {high:g}]")
        return float(value)

    # -- records ---------------------------------------------------------------------------------

    def add(self, lineno: int, rec: dict) -> None:
        if rec["record"] == "flow":  # the decomposition: lmxray.flow.read_flow reads these
            return
        if rec["record"] == "edge":
            self.add_edge(lineno, rec)
        else:
            self.add_node(lineno, rec)

    def add_edge(self, lineno: int, rec: dict) -> None:
        layer = self.layer(lineno, "src_layer", rec["src_layer"])
        if rec["dst_layer"] != layer:
            self.fail(lineno, f"field 'dst_layer' is {rec['dst_layer']!r} but src_layer is {layer} "
                              "(attention stays in a layer)")
        head = rec.get("head_id")
        if head is not None:
            if head not in self.head_index or type(head) is bool:
                self.fail(lineno, f"field 'head_id' is {head!r}, not one of the meta record's heads")
            head = int(head)
        q, k = self.pos(lineno, "src_position", rec["src_position"]), self.pos(lineno, "dst_position",
                                                                               rec["dst_position"])
        self.token(lineno, "src_token_id", rec["src_token_id"])
        self.token(lineno, "dst_token_id", rec["dst_token_id"])
        self.store_edge(lineno, layer, q, k, head, rec["weight"])

    def store_edge(self, lineno: int, layer: int, q: int, k: int, head: int | None, weight) -> None:
        cap = self.max_weight[head is not None]
        w = self.number(lineno, "weight", weight, 0.0, cap)
        e = self.edges
        e["layer"].append(layer)
        e["q"].append(q)
        e["k"].append(k)
        e["head"].append(-1 if head is None else head)
        self.weights.append(w)

    def add_node(self, lineno: int, rec: dict) -> None:
        comp = rec["component"]
        pos = self.pos(lineno, "position", rec["position"])
        self.token(lineno, "token_id", rec["token_id"])
        if comp == "confidence":
            self.confidence_node = rec
            return
        if comp == "logits":
            self.add_lens(lineno, self.layer(lineno, "layer", rec["layer"]), pos, rec)
            return
        if comp == "input_embedding":
            if rec["layer"] != 0:
                self.fail(lineno, f"field 'layer' is {rec['layer']!r}; input_embedding nodes have layer 0")
            layer = 0
        else:
            layer = self.layer(lineno, "layer", rec["layer"])
        head = rec.get("head_id")
        if comp in PER_HEAD_COMPONENTS:
            bound = self.head_bound[comp]
            head = 0 if head is None else self.index(lineno, "head_id", head, bound,
                                                     f"the model has {bound} {'query' if comp == 'query' else 'KV'} heads")
        elif head is not None:
            self.fail(lineno, f"field 'head_id' is set on a {comp} node (only query, key and value are per head)")
        norm = self.number(lineno, "norm", rec["norm"], 0.0)
        values = rec.get("values")
        if values is not None:
            values = finite_floats(values, f"{self.path}:{lineno}", "values", self.fix)
        self.nodes.setdefault(comp, []).append((layer, pos, head, norm, values))

    def add_lens(self, lineno: int, layer: int, pos: int, rec: dict) -> None:
        top = rec["top_k"]
        ids = [self.token(lineno, f"top_k.{i}.token_id", s["token_id"]) for i, s in enumerate(top)]
        probs = [self.number(lineno, f"top_k.{i}.prob", s["prob"], 0.0, 1.0) for i, s in enumerate(top)]
        tp = rec.get("target_prob")
        tp = None if tp is None else self.number(lineno, "target_prob", tp, 0.0, 1.0)
        rank = rec.get("target_rank", 0)
        if rank:
            rank = self.index(lineno, "target_rank", rank, min(self.vocab, MAX_INDEX) + 1, "a rank in the vocabulary")
        self.lens.append((layer, pos, ids, probs, tp, rank))

    # -- assembling ------------------------------------------------------------------------------

    def build(self) -> Trace:
        t, layers = self.n_tokens, self.base["layers"]
        where = str(self.path)
        trace = Trace(**self.base)
        trace.attention, trace.attention_heads = self.attention(t, layers)
        trace.entropy = dense_floats(self.meta.get("entropy"), (len(layers), trace.model.n_heads, t), where,
                                     "entropy", self.fix)
        trace.attention_mass = dense_floats(self.meta.get("attention_mass"), (t,), where, "attention_mass", self.fix)
        trace.components = self.components(t, layers, trace.model)
        trace.lens = self.build_lens(t, layers)
        return trace

    def edge_arrays(self):
        e = {k: np.frombuffer(v, dtype=np.int64) if len(v) else np.zeros(0, np.int64) for k, v in self.edges.items()}
        w = np.frombuffer(self.weights, dtype=np.float64) if len(self.weights) else np.zeros(0)
        li = {l: i for i, l in enumerate(self.layers_seen())}
        lidx = np.array([li[l] for l in e["layer"].tolist()], dtype=np.int64)
        return e, w, lidx

    def layers_seen(self) -> list[int]:
        return self.base["layers"]

    def attention(self, t: int, layers: list[int]):
        """Dense maps from edges: head-summed edges -> attention, per-head edges -> attention_heads."""
        e, w, lidx = self.edge_arrays()
        per_head = e["head"] >= 0
        capture = self.base["capture"]
        attention = attention_heads = None
        where = str(self.path)
        if (~per_head).any() or (capture.get("attention") and layers):
            attention = allocate(where, (len(layers), t, t), "float32", 0.0, "the attention maps")
            np.add.at(attention, (lidx[~per_head], e["q"][~per_head], e["k"][~per_head]), w[~per_head])
        if per_head.any() or capture.get("per_head"):
            hi = self.head_index
            hidx = np.array([hi[h] for h in e["head"][per_head].tolist()], dtype=np.int64)
            attention_heads = allocate(where, (len(layers), len(hi), t, t), "float32", 0.0, "the per-head maps")
            np.add.at(attention_heads, (lidx[per_head], hidx, e["q"][per_head], e["k"][per_head]), w[per_head])
        return attention, attention_heads

    def head_axis(self, comp: str, nodes: list, model) -> int:
        declared = model.n_heads if comp == "query" else model.n_kv_heads
        return max(declared, 1 + max(n[2] for n in nodes))

    def components(self, t: int, layers: list[int], model) -> dict[str, ComponentData]:
        out = {}
        li = {l: i for i, l in enumerate(layers)}
        for comp in COMPONENTS:
            nodes = self.nodes.get(comp)
            if not nodes:
                continue
            shape = (1 if comp == "input_embedding" else len(layers), t)
            if comp in PER_HEAD_COMPONENTS:
                shape += (self.head_axis(comp, nodes, model),)
            n_vals = max((len(n[4]) for n in nodes if n[4] is not None), default=0)
            where = str(self.path)
            norm = allocate(where, shape, BY_NAME[f"components.{comp}.norm"].dtype, np.nan, f"{comp} norms")
            values = allocate(where, shape + (n_vals,), "float32", np.nan, f"{comp} values") if n_vals else None
            for layer, pos, head, nrm, vals in nodes:
                idx = (0 if comp == "input_embedding" else li[layer], pos)
                if len(shape) == 3:
                    idx += (head,)
                norm[idx] = np.nan if nrm is None else nrm
                if vals is not None and values is not None:
                    values[idx][: len(vals)] = vals
            out[comp] = ComponentData(norm=norm, values=values)
        return out

    def build_lens(self, t: int, layers: list[int]) -> LogitLens | None:
        if not self.lens:
            return None
        li = {l: i for i, l in enumerate(layers)}
        k = max(len(ids) for _, _, ids, *_ in self.lens)
        where, n = str(self.path), len(layers)
        top_ids = allocate(where, (n, t, k), "int64", -1, "the logit lens")
        top_probs = allocate(where, (n, t, k), "float32", np.nan, "the logit lens")
        target = np.full((n, t), np.nan, dtype=np.float32)
        rank = np.zeros((n, t), dtype=np.int32)  # 0: not recorded (files older than target_rank)
        for layer, pos, ids, probs, tp, rk in self.lens:
            top_ids[li[layer], pos, : len(ids)] = ids
            top_probs[li[layer], pos, : len(probs)] = probs
            target[li[layer], pos] = np.nan if tp is None else tp
            rank[li[layer], pos] = rk
        return LogitLens(top_ids=top_ids, top_probs=top_probs, target_prob=target,
                         target_rank=rank if rank.any() else None)
