#!/usr/bin/env python
"""Flow benchmark: time and peak memory of ``lmxray.flow.flow`` against the plain forward, in one run.

    python benchmarks/flow.py --model smollm2 --seq-len 256                      # CPU target: within 30 s
    python benchmarks/flow.py --synthetic qwen2.5-7b --seq-len 1024 --device cuda  # GPU: random bf16 weights

Prints one JSON object on stdout. ``forward``: the untraced forward (``Model.logits``); ``flow``: the
whole decomposition (freeze pass, every layer, attribution). Times are medians of ``--repeats`` after a
warm-up. Memory: on CUDA ``max_memory_allocated`` during the call (peak and extra over what was held
before); on CPU the process's RSS high-water mark after each mode, modes in that order (forward first).
The synthetic model keeps its weights in bf16; the decomposition holds contributions in fp32 and runs
its matmuls in ``--compute-dtype`` (bf16 matmuls accumulate in fp32).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time

import torch

SYNTHETIC = {
    "qwen2.5-7b": dict(num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4, hidden_size=3584,
                       intermediate_size=18944, vocab_size=152064, max_position_embeddings=32768,
                       rms_norm_eps=1e-6, tie_word_embeddings=False),
}


class _IdsTokenizer:
    """Any text becomes ``n`` fixed pseudo-random ids: a synthetic model needs no real tokenizer."""

    pad_token_id = eos_token_id = bos_token_id = 0

    def __init__(self, n: int, vocab: int):
        self.ids = torch.randint(1, vocab, (n,), generator=torch.Generator().manual_seed(0)).tolist()

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": list(self.ids)}

    def decode(self, ids, **kwargs):
        return "".join(f"<{i}>" for i in ids)


def _load(args):
    import lmxray
    from lmxray.models.loader import from_hf

    if args.synthetic is None:
        return lmxray.load(args.model, device=args.device, dtype=args.dtype), "The capital of France is " * 64
    import transformers

    config = transformers.Qwen2Config(**SYNTHETIC[args.synthetic])
    torch.manual_seed(0)
    with torch.device(args.device):
        hf = transformers.Qwen2ForCausalLM(config).to(torch.bfloat16)
    return from_hf(hf, _IdsTokenizer(args.seq_len, config.vocab_size), args.synthetic), "synthetic"


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _measure(fn, device, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        result = fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    memory = {}
    if device.type == "cuda":
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        _sync(device)
        peak = torch.cuda.max_memory_allocated()
        memory = {"peak_mib": peak / 2**20, "extra_mib": (peak - before) / 2**20}
    else:
        memory = {"rss_high_water_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    return statistics.median(times), memory, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--synthetic", choices=sorted(SYNTHETIC))
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", help="weights of --model (the synthetic model is bf16)")
    parser.add_argument("--compute-dtype", default=None, help="float32 or bfloat16 (default: float32 on CPU, "
                                                              "bfloat16 for the synthetic model)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    from lmxray.flow import flow

    model, text = _load(args)
    device = model.device
    ids = model.encode(text)[: args.seq_len]
    prompt = model.tokenizer.decode(ids) if args.synthetic is None else text
    n = len(model.encode(prompt))
    compute = args.compute_dtype or ("bfloat16" if args.synthetic else "float32")
    compute_dtype = getattr(torch, compute)
    print(f"model {model.info.name}, T = {n}, device {device}, compute {compute}", file=sys.stderr)
    forward_s, forward_mem, _ = _measure(lambda: model.logits(prompt), device, args.repeats)
    flow_s, flow_mem, result = _measure(lambda: flow(model, prompt, compute_dtype=compute_dtype), device, args.repeats)
    d, f, layers = model.info.d_model, model.hf.config.intermediate_size, model.info.n_layers
    pairs = n * (n + 1) // 2 + n
    print(json.dumps({
        "model": model.info.name, "device": str(device), "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "seq_len": n, "compute_dtype": compute, "repeats": args.repeats,
        "forward_s": round(forward_s, 4), "flow_s": round(flow_s, 3), "ratio": round(flow_s / forward_s, 1),
        "forward_memory": forward_mem, "flow_memory": flow_mem,
        "mlp_tflop": round(4 * d * f * pairs * layers / 1e12, 3), "max_error": result.max_error,
        "predicted": result.logits[0].text,
    }, indent=1))


if __name__ == "__main__":
    main()
