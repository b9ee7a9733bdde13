"""Reading one layer of a large .safetensors trace: time, memory and file size, printed as JSON.

Builds a synthetic 2,048-token per-head trace with the built-in model's shape (SmolLM2-135M:
30 layers, 9 heads, 3 KV heads; random arrays), writes it, then in a fresh process opens it and
reads one layer's map. Target (issue 9): <= 50 ms without reading the whole file.

    .venv/bin/python benchmarks/trace_read.py [--tokens 2048] [--repeats 20] [--dir DIR] [--cold]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BUILTIN = dict(name="smollm2", source="builtin", sha256=None, architecture="llama", n_layers=30, n_heads=9,
               n_kv_heads=3, d_model=576, vocab_size=49152, dtype="float32")
D_MLP, D_HEAD = 1536, 64


def synthetic_trace(t: int, seed: int = 0):
    """A per-head trace of ``t`` tokens with every array filled (per-head maps: one random layer, repeated)."""
    from lmxray.capture.plan import CapturePlan
    from lmxray.trace.fields import COMPONENT_AXES
    from lmxray.trace.types import ComponentData, LogitLens, ModelInfo, TokenScore, Trace

    rng = np.random.default_rng(seed)
    info = ModelInfo(**BUILTIN)
    n_l, n_h, n_kv = info.n_layers, info.n_heads, info.n_kv_heads
    causal = np.tril(np.ones((t, t), dtype=np.float32))
    one_layer = rng.random((n_h, t, t), dtype=np.float32) * causal
    one_layer /= one_layer.sum(-1, keepdims=True)
    heads = np.broadcast_to(one_layer, (n_l, n_h, t, t))  # a view: 4.5 GB on disk, one layer in memory
    widths = {"model_values": 8, "head_values": 8, "mlp_values": 8}
    heads_of = {"model_head": n_h, "kv_head": n_kv}
    components = {}
    for name, (layer_axis, head_axis, width_axis, _) in COMPONENT_AXES.items():
        shape = (1 if layer_axis == "embedding_layer" else n_l, t) + ((heads_of[head_axis],) if head_axis else ())
        components[name] = ComponentData(norm=rng.random(shape, dtype=np.float32) * 10,
                                         values=rng.standard_normal(shape + (widths[width_axis],), dtype=np.float32))
    lens = LogitLens(top_ids=np.full((n_l, t, 5), -1, np.int64), top_probs=np.full((n_l, t, 5), np.nan, np.float32),
                     target_prob=np.full((n_l, t), np.nan, np.float32), target_rank=np.zeros((n_l, t), np.int32))
    lens.top_ids[:, -1] = rng.integers(0, info.vocab_size, (n_l, 5))
    lens.top_probs[:, -1] = 0.1
    lens.target_prob[:, -1], lens.target_rank[:, -1] = 0.1, 1
    ids = rng.integers(0, info.vocab_size, t).tolist()
    return Trace(model=info, prompt="synthetic", token_ids=ids, tokens=[f"<{i}>" for i in ids], position=t - 1,
                 top_k=[TokenScore(7, "<7>", 0.5)], capture=CapturePlan(per_head=True).to_dict(),
                 layers=list(range(n_l)), heads=list(range(n_h)), attention=heads.sum(1),
                 attention_heads=heads, entropy=rng.random((n_l, n_h, t), dtype=np.float32),
                 components=components, lens=lens, attention_mass=rng.random(t, dtype=np.float32))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(path: str, layer: int, head: int, repeats: int) -> dict:
    """In this (fresh) process: open + one layer's map, medians over ``repeats``, and the RSS it added."""
    from lmxray.trace.dense import open_trace

    before = rss_bytes()
    summed, per_head, opened = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        with open_trace(path) as f:
            mid = time.perf_counter()
            a = f.layer_map(layer)
            opened.append(mid - start)
            summed.append(time.perf_counter() - start)
            start = time.perf_counter()
            b = f.layer_map(layer, head=head)
            per_head.append(time.perf_counter() - start)
    grown = rss_bytes() - before
    return {"first_open_and_layer_map_ms": 1e3 * summed[0], "open_ms": 1e3 * statistics.median(opened),
            "open_and_layer_map_ms": 1e3 * statistics.median(summed),
            "head_map_ms": 1e3 * statistics.median(per_head),
            "map_shape": list(a.shape), "map_bytes": a.nbytes, "head_map_shape": list(b.shape), "rss_growth_bytes": grown}


def drop_page_cache() -> bool | str:
    """Write dirty pages and drop the page cache; True, or why it could not."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    except OSError as e:
        return f"not dropped: {e.strerror}"
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--head", type=int, default=4)
    parser.add_argument("--dir", default=None, help="where to write the trace (default: a temporary folder)")
    parser.add_argument("--cold", action="store_true",
                        help="drop the page cache before reading (root only), so the first read comes from disk")
    parser.add_argument("--read", default=None, help=argparse.SUPPRESS)  # the fresh reader process
    args = parser.parse_args()
    if args.read:
        print(json.dumps(measure(args.read, args.layer, args.head, args.repeats)))
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "trace.safetensors"
        trace = synthetic_trace(args.tokens)
        start = time.perf_counter()
        trace.save(path)
        write_s = time.perf_counter() - start
        del trace
        cold = drop_page_cache() if args.cold else None
        reader = subprocess.run([sys.executable, __file__, "--read", str(path), "--layer", str(args.layer),
                                 "--head", str(args.head), "--repeats", str(args.repeats)],
                                check=True, capture_output=True, text=True)
        result = json.loads(reader.stdout)
        size = path.stat().st_size
    result.update(cold_cache=cold, tokens=args.tokens, layers=BUILTIN["n_layers"], heads=BUILTIN["n_heads"], file_bytes=size,
                  file_gib=round(size / 2**30, 2), write_s=round(write_s, 2), repeats=args.repeats,
                  read_share_of_file=round(result["map_bytes"] / size, 5), target_ms=50,
                  meets_target=result["open_and_layer_map_ms"] <= 50)
    for k in ("first_open_and_layer_map_ms", "open_ms", "open_and_layer_map_ms", "head_map_ms"):
        result[k] = round(result[k], 2)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
