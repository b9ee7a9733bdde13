"""Read legacy rocmforge forward-graph JSONL files (a meta record without "schema") into a Trace.

Those files carry fewer fields: the prompt's length, layers and heads are inferred from the
records, each bounded so a bad file is refused instead of allocated (docs/trace-format.md).
"""

from __future__ import annotations

import math

import numpy as np

from lmxray.errors import LmxrayError
from lmxray.trace.build import RecordBuilder, allocate, dense_floats, finite_floats
from lmxray.trace.meta import MAX_HEADS, MAX_INDEX
from lmxray.trace.types import ModelInfo, TokenScore, Trace

LEGACY_FIX = "fix that line, or re-export the trace with `lmxray trace`"


class LegacyBuilder(RecordBuilder):
    """Builds a Trace from a rocmforge file: sizes come from the records, every edge is summed into ``attention``."""

    fix = LEGACY_FIX

    def setup(self) -> None:
        meta, where = self.meta, f"{self.path}:1"
        ids = meta.get("token_ids")
        self.n_tokens = None if ids is None else len(ids)  # None: infer T from the positions
        for name in ("token_ids", "tokens"):
            values = meta.get(name)
            if values is not None and self.n_tokens is not None and len(values) != self.n_tokens:
                raise LmxrayError(f"{where}: field 'tokens' has {len(values)} items but 'token_ids' has "
                                  f"{self.n_tokens}", self.fix)
        if ids is not None:
            for i, v in enumerate(ids):
                if type(v) is not int or not 0 <= v <= MAX_INDEX:
                    raise LmxrayError(f"{where}: field 'token_ids' item {i} is {v!r}, not an integer in "
                                      f"0..{MAX_INDEX}", self.fix)
        self.vocab = MAX_INDEX + 1
        self.seen_ids: dict[int, int] = {}  # pos -> token id (files without token_ids)
        self.seen_layers: set[int] = set()
        self.max_pos = -1
        self.max_weight = {True: 1 + 1e-3, False: 1 + 1e-3}  # one edge per head: each a probability

    def pos(self, lineno: int, field: str, value, token_id=None) -> int:
        if self.n_tokens is not None:
            return super().pos(lineno, field, value)
        value = self.index(lineno, field, value, MAX_INDEX + 1, "a token position")
        self.max_pos = max(self.max_pos, value)
        if type(token_id) is int and 0 <= token_id <= MAX_INDEX:
            self.seen_ids.setdefault(value, token_id)
        return value

    def layer(self, lineno: int, field: str, value) -> int:
        value = self.index(lineno, field, value, MAX_HEADS, "a model layer")
        self.seen_layers.add(value)
        return value

    def add_edge(self, lineno: int, rec: dict) -> None:
        field = next((k for k in ("src_layer", "layer", "dst_layer") if k in rec), None)
        layer = 0 if field is None else self.layer(lineno, field, rec[field])
        self.seen_layers.add(layer)
        head = rec.get("head_id")
        if head is not None:
            head = self.index(lineno, "head_id", head, MAX_HEADS, "a head of the layer")
        q = self.pos(lineno, "src_position", rec["src_position"], rec.get("src_token_id"))
        k = self.pos(lineno, "dst_position", rec["dst_position"], rec.get("dst_token_id"))
        self.store_edge(lineno, layer, q, k, head, rec["weight"])

    def add_node(self, lineno: int, rec: dict) -> None:
        comp, pos = rec["component"], rec["position"]
        if pos is not None:  # legacy nodes may have no position: nothing to place
            pos = self.pos(lineno, "position", pos, None if comp == "confidence" else rec.get("token_id"))
        if comp == "confidence":
            self.confidence_node = rec
        if pos is None or comp == "confidence":
            return
        if comp == "logits":
            if "top_k" in rec:
                self.add_lens(lineno, self.layer(lineno, "layer", rec["layer"]), pos, rec)
            return
        layer = 0 if comp == "input_embedding" else self.layer(lineno, "layer", rec["layer"])
        head = rec.get("head_id")
        head = 0 if head is None else self.index(lineno, "head_id", head, MAX_HEADS, "a head of the layer")
        values = rec.get("values")
        if values is not None:
            values = finite_floats(values, f"{self.path}:{lineno}", "values", self.fix)
        norm = rec.get("norm")
        if norm is None and values:  # the norm of what was kept
            norm = math.sqrt(sum(v * v for v in values if not math.isnan(v)))
        norm = None if norm is None else self.number(lineno, "norm", norm, 0.0)
        self.nodes.setdefault(comp, []).append((layer, pos, head, norm, values))

    def layers_seen(self) -> list[int]:
        return sorted(self.seen_layers)  # input_embedding nodes sit below layer 0 and do not add it

    def head_axis(self, comp: str, nodes: list, model) -> int:
        return 1 + max(n[2] for n in nodes)  # a whole vector without head_id is head 0

    def build(self) -> Trace:
        meta = self.meta
        ids = meta.get("token_ids")
        token_ids = list(ids) if ids is not None else [self.seen_ids.get(p, 0) for p in range(self.max_pos + 1)]
        t = len(token_ids)
        layers = self.layers_seen()
        self.base = {"layers": layers, "capture": {}}
        self.head_index = {h: i for i, h in enumerate(sorted({h for h in self.edges["head"] if h >= 0}))}
        heads = list(self.head_index)
        summed, per_head = self.attention(t, layers)
        model = ModelInfo(name="unknown", source="legacy", sha256=None, architecture="unknown",
                          n_layers=max(layers) + 1 if layers else 0, n_heads=max(heads) + 1 if heads else 0,
                          n_kv_heads=0, d_model=0, vocab_size=0, dtype="unknown")
        where = str(self.path)
        entropy = meta.get("entropy")
        if entropy is not None:
            shape = (len(layers), len(entropy[0]) if type(entropy) is list and entropy and type(entropy[0]) is list
                     else 0, t)
            entropy = dense_floats(entropy, shape, where, "entropy", self.fix)
        return Trace(
            model=model, prompt=meta.get("prompt", ""), token_ids=token_ids,
            tokens=list(meta["tokens"]) if "tokens" in meta else [str(i) for i in token_ids],
            position=self.legacy_position(t), top_k=self.top_k(), expected_attention=self.expected(t),
            capture={}, layers=layers, heads=heads, attention=summed, attention_heads=per_head,
            entropy=entropy, components=self.components(t, layers, model), lens=self.build_lens(t, layers),
            attention_mass=dense_floats(meta.get("attention_mass"), (t,), where, "attention_mass", self.fix),
            version=meta.get("lmxray_version", "") if type(meta.get("lmxray_version")) is str else "",
            created=meta.get("created", "") if type(meta.get("created")) is str else "",
        )

    def attention(self, t: int, layers: list[int]):
        """Every edge is summed into ``attention`` (the per-head edges of those files); edges with a head_id
        also fill ``attention_heads``."""
        e, w, lidx = self.edge_arrays()
        where = str(self.path)
        attention = attention_heads = None
        if len(w):
            attention = allocate(where, (len(layers), t, t), "float32", 0.0, "the attention maps")
            np.add.at(attention, (lidx, e["q"], e["k"]), w)
        per_head = e["head"] >= 0
        if per_head.any():
            hidx = np.array([self.head_index[h] for h in e["head"][per_head].tolist()], dtype=np.int64)
            attention_heads = allocate(where, (len(layers), len(self.head_index), t, t), "float32", 0.0,
                                       "the per-head maps")
            np.add.at(attention_heads, (lidx[per_head], hidx, e["q"][per_head], e["k"][per_head]), w[per_head])
        return attention, attention_heads

    def top_k(self) -> list[TokenScore]:
        """The prediction from the meta record or the confidence node; without one: id -1, text "", prob NaN."""
        meta, node = self.meta, self.confidence_node or {}
        pred = meta.get("predicted_token", node.get("token_id"))
        conf = meta.get("confidence")
        if conf is None:
            conf = node.get("norm", (node.get("values") or [None])[0])
        token_id = pred if type(pred) is int and 0 <= pred <= MAX_INDEX else -1
        text = pred if isinstance(pred, str) else meta.get("predicted_text", "")
        prob = conf if type(conf) in (int, float) and 0 <= conf <= 1 else math.nan
        return [TokenScore(token_id, text if isinstance(text, str) else "", float(prob))]

    def legacy_position(self, t: int) -> int:
        """The confidence node's position, else the last token."""
        node = self.confidence_node
        if node is not None and node.get("position") is not None:
            return node["position"]
        return max(t - 1, 0)

    def expected(self, t: int) -> dict[int, list[int]]:
        """Expected attention (keys may count from the end); every position must lie in the prompt."""
        meta = self.meta
        expected = meta.get("expected_attention")
        if not expected and meta.get("expected_positions") is not None:
            expected = {str(self.legacy_position(t)): meta["expected_positions"]}
        out = {}
        for q, ks in (expected or {}).items():
            resolved = [p + t if type(p) is int and p < 0 else p for p in [int(q), *ks]]
            if not all(type(p) is int and 0 <= p < t for p in resolved):
                raise LmxrayError(f"{self.path}:1: field 'expected_attention' names a position outside the prompt's "
                                  f"{t} tokens ({q}: {ks})", self.fix)
            out[resolved[0]] = resolved[1:]
        return out
