"""The support matrix: for every causal-LM model type in the installed transformers, does lmxray trace it exactly,
and does flow reconstruct it?

Each type's default config is shrunk (``lmxray.models.tiny``) and built with random
weights (fp32, seed 0). Trace is exact when the captured per-head probabilities
match eager attention's within ``PROB_TOL``, the traced logits match eager's and
the last layer's logit lens gives the model's own logits, and (where the trace has
them) what attention and the MLP add sums to the residual's change. Flow is exact when the
sum over sources equals the true residual (relative ``FLOW_TOL``) and the logit
attribution sums to the logit. Encoder, encoder-decoder and multimodal types are
listed as out of scope with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from lmxray.errors import LmxrayError

PROB_TOL = 1e-5  # per-head probabilities vs eager output_attentions (fp32)
LOGIT_TOL = 1e-4  # traced logits vs eager logits, and the last layer's lens vs the logits (fp32, absolute)
COMPONENTS_TOL = 1e-5  # |resid_in + attention out + MLP out - resid_out|, relative to the residual (fp32)
FLOW_TOL = 1e-4  # flow: |sum over sources - true residual| / |true residual|, and attribution sum vs logit
MAX_PARAMS = 5_000_000  # a shrunk config larger than this is not built (some types ignore the shrink)
PROMPT = "the tiny cat sat on a mat, and then"  # 36 bytes + BOS: longer than the shrunk sliding windows
SEED = 0
TINY_FAILS = "the tiny model does not build or run"  # a gap in models/tiny.py, not in lmxray
NO_ATTENTION = "it has no attention"  # how the refusal of a state-space or recurrent model begins


@dataclass
class Support:
    """One model type's row of the matrix. ``trace``/``flow``: True (exact), False (fails), None (not applicable)."""

    model_type: str
    status: str  # "traced", "refused", "failed" (trace tried and went wrong), "out of scope"
    reason: str | None  # why it is refused, out of scope or failed; None when traced
    spec: str | None  # "adapter" or "inspection" when lmxray found a spec
    trace: bool | None
    attention_drift: float | None  # max |captured - eager| over per-head probabilities
    logits_drift: float | None  # max |traced - eager| over logits
    lens_drift: float | None  # max |last-layer lens - final log-probs|
    components_drift: float | None  # max |resid_in + attention out + MLP out - resid_out| / max |resid_out|
    flow: bool | None
    flow_error: float | None  # max relative residual error of the decomposition
    attribution_drift: float | None  # max |sum of attributions - logit|
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


class ByteTokenizer:
    """Bytes as tokens (3 + byte % 125) after a BOS: enough to drive a tiny random model from text."""

    pad_token_id, bos_token_id, eos_token_id = 0, 1, 2

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        ids = [3 + b % 125 for b in text.encode("utf-8")]
        return {"input_ids": ([self.bos_token_id] if add_special_tokens else []) + ids}

    def decode(self, ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool = False) -> str:
        return "".join("<bos>" if i == 1 else chr(32 + (i - 3) % 95) if i >= 3 else "<pad>" for i in ids)


def causal_lm_types() -> list[str]:
    """Every model type the installed transformers maps to a causal-LM class, sorted."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def support_matrix(types: Iterable[str] | None = None,
                   progress: Callable[[Support], None] | None = None) -> list[Support]:
    """Check each model type (all causal-LM types by default); ``progress`` is called after each row."""
    from transformers.utils import logging as hf_logging

    wanted = causal_lm_types() if types is None else list(types)
    unknown = sorted(set(wanted) - set(causal_lm_types()))
    if unknown:
        raise LmxrayError(f"unknown causal-LM model type(s): {', '.join(unknown)}",
                          "name model types of the installed transformers (the full matrix lists them all)")
    level, threads = hf_logging.get_verbosity(), torch.get_num_threads()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(1)  # tiny matmuls: one thread is many times faster than a contended pool
    rows = []
    try:
        for model_type in wanted:
            row = check_type(model_type)
            rows.append(row)
            if progress is not None:
                progress(row)
    finally:
        hf_logging.set_verbosity(level)
        torch.set_num_threads(threads)
    return rows


def summary(rows: list[Support]) -> dict:
    """The counts the docs quote: decoder-only types, those with attention, how many trace and flow exactly, and
    the types out of scope by reason. ``trace_share`` is over the decoder-only types that have attention."""
    decoder = [r for r in rows if r.status != "out of scope"]
    no_attention = sum(1 for r in decoder if r.status == "refused" and r.reason.startswith(NO_ATTENTION))
    scope: dict[str, int] = {}
    for r in rows:
        if r.status == "out of scope":
            scope[r.reason] = scope.get(r.reason, 0) + 1
    traced = sum(1 for r in decoder if r.trace)
    with_attention = len(decoder) - no_attention
    return {
        "causal_lm_types": len(rows), "decoder_only_types": len(decoder), "without_attention": no_attention,
        "with_attention": with_attention, "trace_exact": traced,
        "trace_share": round(traced / with_attention, 4) if with_attention else 0.0,
        "refused": sum(1 for r in decoder if r.status == "refused"),
        "failed": sum(1 for r in decoder if r.status == "failed"),
        "flow_exact": sum(1 for r in decoder if r.flow), "out_of_scope": scope,
    }


def markdown(rows: list[Support]) -> str:
    """The counts (a JSON block) and one table row per type, as docs/architectures.md shows them."""
    import json

    mark = {True: "exact", False: "no", None: "-"}
    lines = ["```json", json.dumps(summary(rows), indent=1), "```", "",
             "| model type | status | spec | trace | flow | reason |", "|---|---|---|---|---|---|"]
    for r in rows:
        reason = (r.reason or "").replace("|", "\\|")
        lines.append(f"| {r.model_type} | {r.status} | {r.spec or '-'} | {mark[r.trace]} | {mark[r.flow]} | {reason} |")
    return "\n".join(lines) + "\n"


def check_type(model_type: str) -> Support:
    """Build a tiny random model of one type and check trace (and flow, where an adapter declares its maps)."""
    from transformers import CONFIG_MAPPING

    from lmxray.adapters import check_scope

    start = time.perf_counter()
    row = dict(model_type=model_type, spec=None, trace=None, attention_drift=None, logits_drift=None,
               lens_drift=None, components_drift=None, flow=None, flow_error=None, attribution_drift=None)
    try:
        default = CONFIG_MAPPING[model_type]()
    except Exception as e:  # transformers' own default config fails its validation
        return Support(status="failed", reason=f"the default config does not build: {_line(e)}", seconds=0.0, **row)
    try:
        check_scope(default)
    except LmxrayError as e:
        return Support(status="out of scope", reason=e.problem.partition(": it is ")[2], seconds=0.0, **row)
    ids = ByteTokenizer()(PROMPT)["input_ids"]
    try:
        hf = tiny_model(model_type)
        with torch.no_grad():
            eager = hf(torch.tensor([ids]), output_attentions=True, use_cache=False)
    except Exception as e:  # the tiny config does not build or run in eager: a gap in the shrink, reported as such
        return Support(status="failed", reason=f"{TINY_FAILS}: {_line(e)}", seconds=time.perf_counter() - start,
                       **row)
    status, reason = "traced", None
    try:
        _check(hf, ids, eager, row)
    except LmxrayError as e:
        status, reason = "refused", e.problem.removeprefix(f"cannot trace model type '{model_type}': ")
    except Exception as e:  # the model's own code failed under lmxray: a bug to fix, listed with its message
        status, reason = "failed", _line(e)
    if status == "traced" and not row["trace"]:
        status, reason = "failed", "traced values drift (see the drift columns)"
    return Support(status=status, reason=reason, seconds=round(time.perf_counter() - start, 3), **row)


def tiny_model(model_type: str):
    """The type's shrunk config as an fp32 model with seeded random weights; norms and biases moved off their
    trivial init so that a misplaced one shows."""
    from transformers import AutoModelForCausalLM

    from lmxray.models.loader import seeded
    from lmxray.models.tiny import tiny_config

    config = tiny_config(model_type)
    with torch.device("meta"):
        shape = AutoModelForCausalLM.from_config(config)
    n_params = sum(p.numel() for p in shape.parameters())
    if n_params > MAX_PARAMS:
        raise ValueError(f"the shrunk config still has {n_params:,} parameters")
    with seeded(SEED):
        hf = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
        with torch.no_grad():
            for p in hf.parameters():
                if p.ndim == 1:
                    p.add_(0.1 * torch.randn_like(p))
    return hf


@torch.no_grad()
def _check(hf, ids: list[int], eager, row: dict) -> None:
    """Fill ``row`` with the trace (and flow) drifts of one tiny model against its eager forward ``eager``;
    raises when lmxray refuses it."""
    from lmxray.capture import CapturePlan, capture
    from lmxray.models.loader import from_hf

    model = from_hf(hf, ByteTokenizer(), hf.config.model_type)
    row["spec"] = "inspection" if model.spec.inspected else "adapter"
    plan = CapturePlan(per_head=True, n_values=None, lens_positions=None)
    trace = model.trace(ids, plan=plan)
    reference = [a for a in eager.attentions or () if a is not None]  # hybrids list their attention layers only
    if len(reference) == model.info.n_layers:
        reference = [reference[i] for i in trace.layers]
    if len(reference) != len(trace.layers):
        raise ValueError("eager attention gives no probabilities to compare with")
    ref = torch.stack(reference)[:, 0].numpy()
    captured = trace.attention_heads
    if np.allclose(ref.sum(-1), 1.0, atol=PROB_TOL) and captured.sum(-1).min() < 1 - PROB_TOL:
        captured = captured / captured.sum(-1, keepdims=True)  # eager reports sinks apart (scales its output)
    row["attention_drift"] = _drift(captured, ref)
    traced_logits = capture(model, [ids], plan).logits[0].float().numpy()
    eager_logits = eager.logits[0].float().numpy()
    row["logits_drift"] = _drift(traced_logits, eager_logits)
    if trace.layers[-1] == model.info.n_layers - 1:  # a hybrid ending in another layer kind has no final lens
        final = torch.log_softmax(torch.tensor(eager_logits), -1).numpy().max(-1)
        row["lens_drift"] = _drift(np.log(trace.lens.target_prob[-1]), final)
    row["components_drift"] = _bookkeeping(trace, model.info.n_layers)
    row["trace"] = bool(row["attention_drift"] <= PROB_TOL and row["logits_drift"] <= LOGIT_TOL
                        and (row["lens_drift"] is None or row["lens_drift"] <= LOGIT_TOL)
                        and (row["components_drift"] is None or row["components_drift"] <= COMPONENTS_TOL))
    if not model.spec.inspected:
        _check_flow(model, eager_logits, row)


def _bookkeeping(trace, n_layers: int) -> float | None:
    """How far what attention and the MLP add misses the residual's change, relative to the residual (None when
    the trace lacks a part, or does not hold every layer)."""
    c = trace.components
    if trace.layers != list(range(n_layers)) or not {"attention_output", "mlp_output", "residual"} <= set(c):
        return None
    out = c["residual"].values
    before = np.concatenate([c["input_embedding"].values, out[:-1]])
    return _drift(before + c["attention_output"].values + c["mlp_output"].values, out) / float(np.abs(out).max())


def _check_flow(model, eager_logits: np.ndarray, row: dict) -> None:
    """Flow's residual error and the attribution sums against the eager logits."""
    from lmxray.flow import flow

    result = flow(model, PROMPT, position=-1)
    row["flow_error"] = result.max_error
    row["attribution_drift"] = max(abs(a.total - float(eager_logits[result.position, a.token_id]))
                                   for a in result.logits)
    row["flow"] = bool(result.max_error <= FLOW_TOL and row["attribution_drift"] <= FLOW_TOL)


def _drift(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def _line(e: Exception) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__
