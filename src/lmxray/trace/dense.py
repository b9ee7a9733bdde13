"""Dense binary traces: .safetensors holding every array of a Trace, the meta as JSON in the header.

The attention maps are one tensor per layer, so ``open_trace(path).layer_map(layer)`` reads one
layer (memory-mapped) without touching the rest. Arrays are bit-identical to the Trace written;
the file appears atomically. See docs/trace-format.md.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
from safetensors import safe_open

from lmxray.atomic import atomic_output
from lmxray.errors import LmxrayError
from lmxray.trace.build import allocate
from lmxray.trace.fields import ARRAYS, BY_NAME, COMPONENTS, SCHEMA, array_shapes, check_shapes, get_array, \
    trace_sizes
from lmxray.trace.meta import meta_record, trace_fields
from lmxray.trace.reader import open_input, trace_path
from lmxray.trace.schema import header_validator, meta_error
from lmxray.trace.types import ComponentData, LogitLens, Trace

META_KEY = "lmxray"  # header metadata key holding the meta object as JSON
FORMAT_KEY = "format"  # header metadata key holding SCHEMA
DTYPES = {"float32": "F32", "int64": "I64", "int32": "I32"}  # numpy dtype -> safetensors dtype
FIX = "write it again with trace.save(\"X.safetensors\") or `lmxray convert X.jsonl X.safetensors`"
MAX_HEADER = 100 * 2**20  # the safetensors limit on the JSON header


def _tensors(trace: Trace):
    """(tensor name, field, array, layer index or None) for every array of ``trace``, in file order."""
    for f in sorted(ARRAYS, key=lambda f: f.per_layer):  # small arrays first, then the maps layer by layer
        a = get_array(trace, f.name)
        if a is None:
            continue
        if f.per_layer:
            for li, layer in enumerate(trace.layers):
                yield f"{f.name}.{layer}", f, a, li
        else:
            yield f.name, f, a, None


def write_dense(trace: Trace, path) -> None:
    """Write ``trace`` as .safetensors, atomically; arrays stored in their field's dtype, the meta in the header."""
    path = Path(path)
    meta = meta_record(trace, "safetensors")
    problem = check_shapes(array_shapes(trace), trace_sizes(trace))
    if problem:
        raise LmxrayError(f"cannot write {path}: {problem}", "keep every array in step with the trace's meta sizes")
    header, offset = {}, 0
    for name, f, a, li in _tensors(trace):
        shape = list(np.shape(a)[1:] if li is not None else np.shape(a))
        size = math.prod(shape) * f.itemsize
        header[name] = {"dtype": DTYPES[f.dtype], "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {FORMAT_KEY: SCHEMA, META_KEY: json.dumps(meta, ensure_ascii=False, allow_nan=False)}
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned, as safetensors writes it
    with atomic_output(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for _, f, a, li in _tensors(trace):
            part = np.ascontiguousarray(a[li] if li is not None else a, dtype=np.dtype(f.dtype).newbyteorder("<"))
            out.write(part.data if part.size else b"")


def _sniff(path: Path) -> None:
    """Refuse, before the safetensors parser sees it, a path that is missing, a folder or plainly not safetensors."""
    with open_input(path) as f:
        head = f.read(9)
        size = f.seek(0, 2)
    n = struct.unpack("<Q", head[:8])[0] if len(head) >= 8 else -1
    if len(head) < 9 or not 0 < n <= min(MAX_HEADER, size - 8) or head[8:9] != b"{":
        raise LmxrayError(f"{path}: not a .safetensors file (no safetensors header at its start)", FIX)


class TraceFile:
    """An open .safetensors trace: the meta at once, arrays on demand, memory-mapped (one layer at a time)."""

    def __init__(self, path):
        self.path = trace_path(path)
        _sniff(self.path)
        try:
            self._file = safe_open(str(self.path), framework="np")
            metadata = self._file.metadata() or {}
            self._specs = {k: (tuple(self._file.get_slice(k).get_shape()), self._file.get_slice(k).get_dtype())
                           for k in self._file.keys()}
        except LmxrayError:
            raise
        except Exception as e:  # the safetensors parser's errors (SafetensorError, OSError...)
            first = " ".join(str(e).split())[:200]
            raise LmxrayError(f"{self.path}: not a valid .safetensors file ({first})", FIX) from None
        self.meta = self._read_meta(metadata)
        self.base = trace_fields(self.meta, f"{self.path} (header)", FIX)
        self.layers, self.heads = self.base["layers"], self.base["heads"]
        self._check_tensors()

    def __enter__(self) -> "TraceFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the memory map (arrays already read stay valid)."""
        self._file = None

    def _fail(self, what: str):
        raise LmxrayError(f"{self.path}: {what}", FIX)

    def _read_meta(self, metadata: dict) -> dict:
        if metadata.get(FORMAT_KEY) != SCHEMA or META_KEY not in metadata:
            got = metadata.get(FORMAT_KEY)
            what = f"its format is {got!r}, this lmxray reads {SCHEMA!r}" if got else "it has no lmxray metadata"
            self._fail(f"not an lmxray trace ({what})")
        try:
            meta = json.loads(metadata[META_KEY], parse_constant=lambda c: None)
        except (ValueError, RecursionError) as e:
            self._fail(f"the header's meta is not valid JSON ({str(e)[:120]})")
        if not isinstance(meta, dict):
            self._fail("the header's meta is not a JSON object")
        problem = meta_error(header_validator(), meta)
        if problem is not None:
            self._fail(f"header {problem}")
        return meta

    def _check_tensors(self) -> None:
        """Every tensor is a known field (per-layer maps for every layer or none) with its dtype and shape."""
        shapes: dict[str, tuple] = {}
        per_layer: dict[str, dict] = {}
        for name, (shape, dtype) in self._specs.items():
            field, _, suffix = name.rpartition(".")
            if field in BY_NAME and BY_NAME[field].per_layer and suffix.isdigit() and str(int(suffix)) == suffix:
                per_layer.setdefault(field, {})[int(suffix)] = shape
            elif name in BY_NAME and not BY_NAME[name].per_layer:
                field = name
                shapes[name] = shape
            else:
                self._fail(f"unknown tensor {name!r} (not a field of lmxray.trace/1)")
            if dtype != DTYPES[BY_NAME[field].dtype]:
                self._fail(f"tensor {name!r} has dtype {dtype}, expected {DTYPES[BY_NAME[field].dtype]}")
        for field, found in per_layer.items():
            missing = [l for l in self.layers if l not in found]
            extra = sorted(set(found) - set(self.layers))
            if missing or extra:
                which = f"{field}.{missing[0]} is missing" if missing else f"{field}.{extra[0]} is not a listed layer"
                self._fail(f"tensor {which} (the meta's layers are {self.layers})")
            if len(set(found.values())) > 1:
                self._fail(f"the {field} tensors differ in shape from layer to layer")
            shapes[field] = (len(self.layers), *next(iter(found.values())))
        for comp in COMPONENTS:
            if f"components.{comp}.values" in shapes and f"components.{comp}.norm" not in shapes:
                self._fail(f"tensor 'components.{comp}.norm' is missing (its values are there)")
        lens = [n for n in ("lens.top_ids", "lens.top_probs", "lens.target_prob") if n in shapes]
        if (lens or "lens.target_rank" in shapes) and len(lens) < 3:
            missing = next(n for n in ("lens.top_ids", "lens.top_probs", "lens.target_prob") if n not in shapes)
            self._fail(f"tensor {missing!r} is missing (the file has other logit-lens tensors)")
        t = len(self.base["token_ids"])
        model = self.base["model"]
        sizes = {"layer": len(self.layers), "embedding_layer": 1, "head": len(self.heads),
                 "model_head": model.n_heads, "kv_head": model.n_kv_heads, "q_pos": t, "k_pos": t, "pos": t}
        problem = check_shapes(shapes, sizes)
        if problem:
            self._fail(f"tensor {problem}")
        self.shapes = shapes

    # -- reading -----------------------------------------------------------------------------------

    def _handle(self):
        if self._file is None:
            raise LmxrayError(f"{self.path}: the trace file is closed", "open it again with open_trace(path)")
        return self._file

    def layer_map(self, layer: int, head: int | None = None) -> np.ndarray:
        """One layer's attention map [q_pos, k_pos]: summed over heads, or of model head ``head``; reads only that."""
        if layer not in self.layers or type(layer) is bool:
            raise LmxrayError(f"layer {layer!r} is not in this trace", f"choose one of its layers {self.layers}")
        if head is None:
            if "attention" not in self.shapes:
                raise LmxrayError(f"{self.path} holds no head-summed maps", "pass head= to read a per-head map")
            return self._handle().get_tensor(f"attention.{layer}")
        if head not in self.heads or type(head) is bool:
            raise LmxrayError(f"head {head!r} has no per-head map in this trace",
                              f"choose one of its heads {self.heads}" if self.heads else "trace with --per-head")
        return np.array(self._handle().get_slice(f"attention_heads.{layer}")[self.heads.index(head)])

    def array(self, name: str) -> np.ndarray | None:
        """The whole array of one field (see trace/fields.py), or None when the file does not hold it."""
        if name not in BY_NAME:
            raise LmxrayError(f"unknown field {name!r}", f"choose one of {', '.join(BY_NAME)}")
        if name not in self.shapes:
            return None
        f, handle = BY_NAME[name], self._handle()
        if not f.per_layer:
            out = handle.get_tensor(name)
        else:
            out = allocate(str(self.path), self.shapes[name], f.dtype, 0, name)
            for li, layer in enumerate(self.layers):
                out[li] = handle.get_tensor(f"{name}.{layer}")
        self._check_ids(name, out)
        return out

    def _check_ids(self, name: str, a: np.ndarray) -> None:
        vocab = self.base["model"].vocab_size or 2**31
        bounds = {"lens.top_ids": (-1, vocab - 1), "lens.target_rank": (0, vocab)}
        if name in bounds and a.size:
            low, high = bounds[name]
            if a.min() < low or a.max() > high:
                self._fail(f"tensor {name!r} holds values outside {low}..{high} (the model's vocab_size is {vocab})")

    def read(self) -> Trace:
        """The whole Trace (every array read into memory)."""
        trace = Trace(**self.base)
        trace.attention, trace.attention_heads = self.array("attention"), self.array("attention_heads")
        trace.entropy, trace.attention_mass = self.array("entropy"), self.array("attention_mass")
        for comp in COMPONENTS:
            norm = self.array(f"components.{comp}.norm")
            if norm is not None:
                trace.components[comp] = ComponentData(norm=norm, values=self.array(f"components.{comp}.values"))
        if "lens.top_ids" in self.shapes:
            trace.lens = LogitLens(top_ids=self.array("lens.top_ids"), top_probs=self.array("lens.top_probs"),
                                   target_prob=self.array("lens.target_prob"),
                                   target_rank=self.array("lens.target_rank"))
        return trace


def open_trace(path) -> TraceFile:
    """Open a .safetensors trace for reading parts of it: ``open_trace(p).layer_map(5)``, ``.array("entropy")``."""
    return TraceFile(path)


def read_dense(path) -> Trace:
    """Read a whole .safetensors trace into a Trace."""
    with TraceFile(path) as f:
        return f.read()

