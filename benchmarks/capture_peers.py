#!/usr/bin/env python
"""Per-head attention capture against its peers, in one process: HF eager, TransformerLens, nnsight, lmxray.

    python benchmarks/capture_peers.py --seq-len 128 512 1024 --repeats 3

Prints one JSON object on stdout (progress goes to stderr). The built-in model (SmolLM2-135M) in
fp32 on the CPU, one torch thread, token ids cut from the shipped corpora
(``experiments/data/corpora/*.txt``, joined in name order). Modes, all on the same ids, each under
``torch.no_grad`` and each returning every layer's per-head probabilities unless said otherwise:

* ``sdpa_floor``: ``model.hf(input_ids=..., use_cache=False)``. lmxray's registered attention with no
  recorder is the stock SDPA path, so this is the plain SDPA forward: the floor every ratio is over.
* ``sdpa_floor_keep1``: the same with ``logits_to_keep=1`` (one position unembedded, as a trace
  reads few positions); shown for transparency, not a ratio base.
* ``hf_eager``: a deep copy of ``model.hf`` switched to eager attention, ``output_attentions=True``.
* ``transformer_lens``: ``TransformerBridge.boot_transformers(name, hf_model=<copy>, tokenizer=...)``
  (TransformerLens 4 replaced HookedTransformer by the bridge; it switches the model to eager
  itself), then ``run_with_cache`` with a names filter keeping the 30 ``hook_pattern``s.
* ``nnsight``: ``TransformersModel(<eager copy>, tokenizer=..., task="text-generation")`` (what the
  deprecated ``LanguageModel`` is), one ``trace`` saving ``self_attn.output[1]`` of every layer.
* ``lmxray_per_head``: ``model.trace(ids, plan=CapturePlan(attention=False, per_head=True,
  row_stats=False, components=(), lens=False))``.
* ``lmxray_default``: ``model.trace(ids)`` with the default ``CapturePlan()`` (head-summed maps, row
  entropy, component summaries, logit lens at the prediction position; no per-head maps).

Time: one call per mode first (the warm-up, whose result is also the attention check), then
``--repeats`` rounds with the modes interleaved; medians of wall (perf_counter) and process CPU time.
Attention check: the largest absolute difference from ``hf_eager`` of the per-head probabilities
over every layer (for ``lmxray_default``, of the head-summed map against eager's sum over heads).
Memory: each mode once more in a fresh child process (hidden ``--child MODE``) that loads the model,
builds that mode's wrapper on it in place (no copy: eager is switched on ``model.hf`` itself), runs the
mode once on 16 tokens, collects garbage, resets the RSS high-water mark (``/proc/self/clear_refs``),
reads VmRSS, runs the mode once at T while keeping its result, and reads VmHWM. ``extra_mb`` is
VmHWM minus that VmRSS: the call alone (activations, transients and the result it returns, at their
peak). ``over_load_mb`` is VmHWM minus the VmHWM of a child that only loads the model and runs one
16-token SDPA forward, so it also counts what the wrapper itself keeps resident.
"""

from __future__ import annotations

import os

# Nothing may come from the hub: the peers get the in-memory model, and any lookup they try fails fast.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import argparse  # noqa: E402
import copy  # noqa: E402
import gc  # noqa: E402
import glob  # noqa: E402
import importlib.metadata  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import torch  # noqa: E402
from measure import (device_name, proc_status, profile_mode, reset_rss_peak, rounded, safe_ratio,  # noqa: E402
                     source_state)

MODES = ("sdpa_floor", "sdpa_floor_keep1", "hf_eager", "transformer_lens", "nnsight",
         "lmxray_per_head", "lmxray_default")
PEERS = {"transformer_lens": "transformer-lens", "nnsight": "nnsight"}  # mode -> distribution
FLOOR = "sdpa_floor"
WARM_TOKENS = 16
CORPORA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "src", "lmxray", "experiments", "data", "corpora")


def log(msg: str) -> None:
    print(f"[capture-peers] {msg}", file=sys.stderr, flush=True)


def peer_version(mode: str) -> str | None:
    """The installed version of a peer, or None when it is not installed (or does not import)."""
    dist = PEERS[mode]
    try:
        version = importlib.metadata.version(dist)
        __import__(dist.replace("-", "_"))
    except Exception:  # not installed, or broken on import: the row says so and the rest runs
        return None
    return version


# -- inputs -----------------------------------------------------------------------------
def corpus_ids(model, seq_len: int) -> list[int]:
    """The first ``seq_len`` token ids of the shipped corpora joined in name order."""
    files = sorted(glob.glob(os.path.join(CORPORA, "*.txt")))
    text = "\n\n".join(open(f, encoding="utf-8").read() for f in files)
    ids = model.tokenizer(text, add_special_tokens=True)["input_ids"]
    if len(ids) < seq_len:
        raise SystemExit(f"the corpora give {len(ids)} tokens, fewer than --seq-len {seq_len}")
    return list(ids[:seq_len])


# -- modes ------------------------------------------------------------------------------
def eager_model(hf, in_place: bool):
    """``hf`` (or a deep copy) with eager attention, the way a user gets ``output_attentions``."""
    eager = hf if in_place else copy.deepcopy(hf)
    eager.set_attn_implementation("eager")
    return eager


def build_mode(mode: str, model, in_place: bool = False):
    """A callable ``run(ids) -> result`` for one mode; wrappers are built here, not timed.

    ``in_place`` (the memory children) wraps ``model.hf`` itself instead of a copy."""
    from lmxray.capture.plan import CapturePlan

    hf = model.hf
    n_layers = hf.config.num_hidden_layers

    def tensor(ids):
        return torch.tensor([ids], device=model.device)

    if mode == "sdpa_floor":
        def run(ids):
            with torch.no_grad():
                return hf(input_ids=tensor(ids), use_cache=False)
    elif mode == "sdpa_floor_keep1":
        def run(ids):
            with torch.no_grad():
                return hf(input_ids=tensor(ids), use_cache=False, logits_to_keep=1)
    elif mode == "hf_eager":
        eager = eager_model(hf, in_place)

        def run(ids):
            with torch.no_grad():
                return eager(input_ids=tensor(ids), use_cache=False, output_attentions=True).attentions
    elif mode == "transformer_lens":
        from transformer_lens.model_bridge import TransformerBridge

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bridge = TransformerBridge.boot_transformers(
                "HuggingFaceTB/SmolLM2-135M", hf_model=hf if in_place else copy.deepcopy(hf),
                tokenizer=model.tokenizer, device=str(model.device), dtype=next(hf.parameters()).dtype)

        def keep(name: str) -> bool:
            return name.endswith("attn.hook_pattern")

        def run(ids):
            with torch.no_grad():
                _, cache = bridge.run_with_cache(tensor(ids), names_filter=keep)
            return [cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(n_layers)]
    elif mode == "nnsight":
        import nnsight

        lm = nnsight.TransformersModel(eager_model(hf, in_place), tokenizer=model.tokenizer,
                                       task="text-generation")

        def run(ids):
            with torch.no_grad():
                with lm.trace(tensor(ids), use_cache=False):
                    patterns = nnsight.save([lm.model.layers[layer].self_attn.output[1]
                                             for layer in range(n_layers)])
            return patterns
    elif mode == "lmxray_per_head":
        plan = CapturePlan(attention=False, per_head=True, row_stats=False, components=(), lens=False)

        def run(ids):
            return model.trace(ids, plan=plan)
    elif mode == "lmxray_default":
        def run(ids):
            return model.trace(ids)
    else:
        raise ValueError(mode)
    return run


def per_layer_heads(mode: str, result) -> list[torch.Tensor] | None:
    """Each layer's per-head probabilities [head, q, k] from a mode's result (None: not per head)."""
    if mode in ("hf_eager", "transformer_lens", "nnsight"):
        return [p[0] for p in result]
    if mode == "lmxray_per_head":
        heads = result.attention_heads
        assert heads is not None and len(result.layers) == heads.shape[0], "per-head maps missing"
        return [torch.from_numpy(heads[i]) for i in range(heads.shape[0])]
    return None


def attention_check(mode: str, result, reference: list[torch.Tensor]) -> dict:
    """Largest |difference| from eager, and the layer where it is, for one mode's result."""
    if mode == "lmxray_default":
        maps = [torch.from_numpy(result.attention[i]) for i in range(result.attention.shape[0])]
        diffs = [(m - ref.sum(0)).abs().max().item() for m, ref in zip(maps, reference)]
        compared = "head-summed map [layer, q, k] vs eager summed over heads"
    else:
        layers = per_layer_heads(mode, result)
        if layers is None:
            return {"compared": "no attention returned"}
        if len(layers) != len(reference):
            return {"error": f"{len(layers)} layers returned, eager has {len(reference)}"}
        diffs = [(got.to(ref.dtype) - ref).abs().max().item() for got, ref in zip(layers, reference)]
        compared = "per-head probabilities [layer, head, q, k] vs eager"
    worst = max(range(len(diffs)), key=diffs.__getitem__)
    return {"compared": compared, "max_abs_diff": float(f"{diffs[worst]:.3g}"), "worst_layer": worst,
            "layers": len(diffs)}


# -- timing -----------------------------------------------------------------------------
def timed(fn, ids) -> tuple[float, float]:
    start, start_cpu = time.perf_counter(), time.process_time()
    fn(ids)  # the result is dropped here, as a caller that only keeps what it reads would
    return time.perf_counter() - start, time.process_time() - start_cpu


def bench_seq_len(args, model, runs: dict, seq_len: int, memory: dict) -> dict:
    ids = corpus_ids(model, seq_len)
    row: dict = {"seq_len": seq_len}
    live = {m: fn for m, fn in runs.items() if callable(fn)}

    # Warm-up: one call per mode, which is also the attention check against eager.
    checks: dict = {}
    reference = None
    for mode in ("hf_eager",) + tuple(m for m in live if m != "hf_eager"):
        if mode not in live:
            continue
        log(f"T={seq_len}: warm-up and check of {mode}")
        result = live[mode](ids)
        if mode == "hf_eager":
            reference = [p[0].clone() for p in result]
            checks[mode] = {"compared": "reference"}
        elif mode.startswith("sdpa"):
            checks[mode] = {"compared": "no attention returned"}
        elif reference is not None:
            checks[mode] = attention_check(mode, result, reference)
        del result
        gc.collect()
    del reference
    gc.collect()

    wall: dict[str, list[float]] = {m: [] for m in live}
    cpu: dict[str, list[float]] = {m: [] for m in live}
    for r in range(args.repeats):
        log(f"T={seq_len}: round {r + 1}/{args.repeats}")
        for mode, fn in live.items():
            w, c = timed(fn, ids)
            wall[mode].append(w)
            cpu[mode].append(c)
            gc.collect()

    med = {m: statistics.median(v) for m, v in wall.items()}
    med_cpu = {m: statistics.median(v) for m, v in cpu.items()}
    best = {m: min(v) for m, v in wall.items()}
    modes: dict = {}
    for mode in MODES:
        if mode not in live:
            modes[mode] = {"status": runs[mode]}
            continue
        mem = memory.get(mode, {})
        modes[mode] = {
            "wall_s": rounded(med[mode]), "cpu_s": rounded(med_cpu[mode]), "min_wall_s": rounded(best[mode]),
            "ratio_floor": safe_ratio(med[mode], med.get(FLOOR)),
            "ratio_floor_cpu": safe_ratio(med_cpu[mode], med_cpu.get(FLOOR)),
            "ratio_floor_min": safe_ratio(best[mode], best.get(FLOOR)),
            "extra_mb": mem.get("extra_mb"), "over_load_mb": mem.get("over_load_mb"),
            "peak_mb": mem.get("peak_mb"),
            "attention": checks.get(mode),
            "wall_runs_s": [round(t, 4) for t in wall[mode]],
        }
        if "error" in mem:
            modes[mode]["memory_error"] = mem["error"]
    row["modes"] = modes
    if "lmxray_per_head" in live and "hf_eager" in live:
        ph, ea = modes["lmxray_per_head"], modes["hf_eager"]
        row["per_head_vs_eager"] = {
            "time": safe_ratio(med["lmxray_per_head"], med["hf_eager"]),
            "time_cpu": safe_ratio(med_cpu["lmxray_per_head"], med_cpu["hf_eager"]),
            "time_min": safe_ratio(best["lmxray_per_head"], best["hf_eager"]),
            "extra_memory": safe_ratio(ph["extra_mb"], ea["extra_mb"]),
        }
    # Median far above minimum: other processes were competing for the cores during this row.
    row["noisy"] = any(med[m] > 1.25 * best[m] for m in med)
    row["targets"] = targets(seq_len, row)
    return row


def targets(seq_len: int, row: dict) -> list[dict]:
    """The issue's targets that apply at this length. Time must hold in wall and in CPU time (medians)."""
    out = []
    vs = row.get("per_head_vs_eager")
    if seq_len in (512, 1024) and vs:
        out.append({"target": f"T={seq_len}: lmxray per-head plan time <= 1.0x HF eager output_attentions",
                    "value": {"wall": vs["time"], "cpu": vs["time_cpu"]},
                    "target_met": None if vs["time"] is None or vs["time_cpu"] is None
                    else vs["time"] <= 1.0 and vs["time_cpu"] <= 1.0})
        out.append({"target": f"T={seq_len}: lmxray per-head plan peak extra memory <= 1.1x HF eager's",
                    "value": vs["extra_memory"],
                    "target_met": None if vs["extra_memory"] is None else vs["extra_memory"] <= 1.1})
    default = row["modes"].get("lmxray_default", {})
    if seq_len == 1024 and "ratio_floor" in default:
        out.append({"target": "T=1024: lmxray default plan time <= 1.3x the SDPA floor",
                    "value": {"wall": default["ratio_floor"], "cpu": default["ratio_floor_cpu"]},
                    "target_met": None if default["ratio_floor"] is None else
                    default["ratio_floor"] <= 1.3 and default["ratio_floor_cpu"] <= 1.3})
    return out


# -- memory (fresh child per mode) --------------------------------------------------------
def load_model():
    import lmxray

    return lmxray.load("smollm2", device="cpu", dtype="float32")


def child_main(args) -> None:
    model = load_model()
    warm_ids = corpus_ids(model, WARM_TOKENS)
    mode = args.child
    run = build_mode("sdpa_floor" if mode == "baseline" else mode, model, in_place=True)
    run(warm_ids)
    ids = corpus_ids(model, args.seq_len[0])
    gc.collect()
    reset = reset_rss_peak()
    rss_before = proc_status("VmRSS")
    result = None
    if mode != "baseline":
        result = run(ids)
    hwm = proc_status("VmHWM")
    del result
    print(json.dumps({"mode": mode, "hwm_kb": hwm, "rss_before_kb": rss_before, "peak_reset": reset}))


def run_child(mode: str, seq_len: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", mode, "--seq-len", str(seq_len)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return {"error": f"child {mode} failed (rc {proc.returncode}): {tail[0]}"}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if not res["peak_reset"]:
        return {"error": "the RSS high-water mark could not be reset (/proc/self/clear_refs)"}
    return res


def child_memory(modes: list[str], seq_len: int, baseline_kb: int) -> dict:
    out = {}
    for mode in modes:
        log(f"T={seq_len}: memory child for {mode}")
        res = run_child(mode, seq_len)
        if "error" in res:
            out[mode] = res
            continue
        out[mode] = {"peak_mb": round(res["hwm_kb"] / 1024, 1),
                     "extra_mb": round((res["hwm_kb"] - res["rss_before_kb"]) / 1024, 1),
                     "over_load_mb": round((res["hwm_kb"] - baseline_kb) / 1024, 1)}
    return out


# -- driver -----------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seq-len", type=int, nargs="+", default=[128, 512, 1024])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="a subset of the modes")
    p.add_argument("--no-memory", action="store_true", help="skip the memory children")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also print the top N functions (cProfile, by own time) of one lmxray per-head call "
                        "at the largest T to stderr")
    p.add_argument("--child", choices=("baseline",) + MODES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    for needed in (FLOOR, "hf_eager"):
        if needed not in args.modes:
            args.modes.append(needed)  # every ratio and check is over these two
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    if args.child:
        child_main(args)
        return
    source_before = source_state()
    load_before = os.getloadavg()
    model = load_model()
    versions = {"transformer_lens": peer_version("transformer_lens"), "nnsight": peer_version("nnsight")}
    runs: dict = {}
    for mode in MODES:
        if mode not in args.modes:
            runs[mode] = "not selected"
        elif mode in PEERS and versions[mode] is None:
            runs[mode] = "not installed"
        else:
            log(f"building {mode}")
            runs[mode] = build_mode(mode, model)
    live = [m for m in MODES if callable(runs[m])]
    baseline_kb = None
    if not args.no_memory:
        base = run_child("baseline", WARM_TOKENS)
        if "error" in base:
            raise SystemExit(f"baseline child failed: {base['error']}")
        baseline_kb = base["hwm_kb"]
    results = []
    for seq_len in args.seq_len:
        limit = model.max_positions
        if limit and seq_len > limit:
            results.append({"seq_len": seq_len, "error": f"longer than the model's context of {limit}"})
            continue
        # Memory children first, while the parent is idle, so they do not compete with the timed rounds.
        memory = {} if args.no_memory else child_memory(live, seq_len, baseline_kb)
        log(f"T={seq_len}: {args.repeats} interleaved rounds of {', '.join(live)}")
        results.append(bench_seq_len(args, model, runs, seq_len, memory))
    if args.profile and callable(runs["lmxray_per_head"]):
        ids = corpus_ids(model, max(args.seq_len))
        log(f"cProfile of one lmxray per-head call at T={len(ids)}:\n"
            + profile_mode(lambda: runs["lmxray_per_head"](ids), args.profile))
    import transformers

    report = {
        "benchmark": "capture_peers",
        **source_before,
        "device_name": device_name(torch.device("cpu")),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peers": {"transformer-lens": versions["transformer_lens"] or "not installed",
                  "nnsight": versions["nnsight"] or "not installed"},
        "model": model.info.name,
        "n_layers": model.info.n_layers,
        "n_heads": model.info.n_heads,
        "dtype": "float32",
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "text": "experiments/data/corpora/*.txt joined in name order, first T tokens",
        "memory_method": None if args.no_memory else (
            "fresh child per mode and T: load, build the wrapper in place, one 16-token call, gc, reset "
            "VmHWM; extra_mb = VmHWM - VmRSS just before the call (result kept); over_load_mb = VmHWM - "
            "VmHWM of a load-only child"),
        "baseline_rss_mb": None if baseline_kb is None else round(baseline_kb / 1024, 1),
        "loadavg_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],  # before, after
        "results": results,
    }
    if source_state() != source_before:  # the library changed under a long run
        report["source_after"] = source_state()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
