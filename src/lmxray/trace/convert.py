"""Convert a trace between JSONL and .safetensors (the format follows each path's suffix)."""

from __future__ import annotations

import os
from pathlib import Path

from lmxray.atomic import output_target
from lmxray.errors import LmxrayError
from lmxray.trace.reader import DENSE_SUFFIX, iter_records, read_trace, trace_path
from lmxray.trace.writer import check_writable

JSONL_SUFFIXES = (".jsonl", ".json")


def trace_format(path: Path, role: str) -> str:
    """"jsonl" or "safetensors" from the suffix of ``path``; anything else is a one-line error."""
    suffix = path.suffix.lower()
    if suffix == DENSE_SUFFIX:
        return "safetensors"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    raise LmxrayError(f"cannot tell the format of {role} {path} from its suffix {suffix or '(none)'}",
                      "name it .jsonl (JSON lines) or .safetensors (dense binary)")


def convert_trace(source, output, threshold: float | None = None) -> dict:
    """Read ``source`` and write it to ``output`` in the other format; returns what was done, as plain data.

    JSONL keeps only edges at or above its threshold, so maps converted from JSONL hold the
    thresholded weights (recorded as ``maps_threshold``). ``threshold`` applies when writing JSONL.
    """
    src, dst = trace_path(source), trace_path(output)
    src_fmt, dst_fmt = trace_format(src, "the source"), trace_format(dst, "the output")
    if src_fmt == dst_fmt:
        raise LmxrayError(f"{src} and {dst} are both {src_fmt}: convert changes the format",
                          "name the output .safetensors for a JSONL source, .jsonl for a .safetensors one")
    if threshold is not None and dst_fmt == "safetensors":
        raise LmxrayError("a threshold applies when writing JSONL", "drop --threshold: .safetensors keeps every weight")
    target = output_target(dst)
    if src.exists() and target.exists() and os.path.samefile(src, target):
        raise LmxrayError(f"{dst} is the source file itself", "choose another output path")
    check_writable(target)
    dropped = 0
    if src_fmt == "jsonl":
        records = iter_records(src)
        _, meta = next(records)
        records.close()
        dropped = ((meta.get("records") or {}).get("flow") or 0) if "schema" in meta else 0
    trace = read_trace(src)
    trace.save(target, threshold=threshold)
    return {"source": str(src), "output": str(dst), "format": dst_fmt, "bytes": target.stat().st_size,
            "maps_threshold": trace.maps_threshold, "flow_records_dropped": dropped}
