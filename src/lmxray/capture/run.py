"""Run a traced forward pass over a batch of prompts and turn the buffers into Traces."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
import torch

from lmxray.capture.attention import RECORDER_KWARG
from lmxray.capture.budget import buffer_bytes, check_fits
from lmxray.capture.plan import CapturePlan
from lmxray.capture.recorder import Recorder
from lmxray.errors import LmxrayError
from lmxray.models.adapters import get_path
from lmxray.trace.types import ComponentData, LogitLens, TokenScore, Trace

LENS_CHUNK_BYTES = 128 * 2**20  # bound on one fp32 [rows, vocab] logit-lens block


@dataclass
class Batch:
    """Left-padded token ids with the mask and position ids that make padding invisible."""

    input_ids: torch.Tensor  # [batch, pos]
    attention_mask: torch.Tensor  # [batch, pos], 1 = real token
    position_ids: torch.Tensor  # [batch, pos], 0 at each prompt's first real token
    pads: list[int]  # left padding per prompt

    @classmethod
    def from_ids(cls, ids: list[list[int]], pad_id: int, device) -> "Batch":
        width = max(len(x) for x in ids)
        pads = [width - len(x) for x in ids]
        input_ids = torch.tensor([[pad_id] * p + x for p, x in zip(pads, ids)], device=device)
        mask = torch.tensor([[0] * p + [1] * len(x) for p, x in zip(pads, ids)], device=device)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        return cls(input_ids, mask, position_ids, pads)


def resolve_position(position: int, n_tokens: int, what: str = "position") -> int:
    """A position as a non-negative index (negative counts from the end), or a clear error."""
    p = position + n_tokens if position < 0 else position
    if not 0 <= p < n_tokens:
        raise LmxrayError(
            f"{what} {position} is out of range for a prompt of {n_tokens} tokens",
            f"use 0..{n_tokens - 1} or -1..-{n_tokens}",
        )
    return p


@torch.no_grad()
def capture_batch(model, batch: Batch, plan: CapturePlan, positions: list[list[int]],
                  logits_to_keep: int = 0) -> tuple[Recorder, torch.Tensor]:
    """One traced forward pass. ``positions``: kept query positions per prompt (real indices).

    Returns the filled recorder and the final logits [batch, pos, vocab], or only the last
    ``logits_to_keep`` positions when that is non-zero (the unembedding is a fifth of a small
    model's work); all on the model's device.
    """
    hf = model.hf
    layers = plan.resolve_layers(model.info.n_layers)
    heads = plan.resolve_heads(model.info.n_heads)
    width = max(len(pos) for pos in positions)  # prompts keep different row counts: pad with -1 (never matched)
    kept = np.array([[pad + p for p in pos] + [-1] * (width - len(pos)) for pad, pos in zip(batch.pads, positions)],
                    dtype=np.int64)
    n_prompts, seq_len = batch.input_ids.shape
    parts = buffer_bytes(hf.config, plan, batch=n_prompts, seq_len=seq_len, kept_rows=width, n_layers=len(layers),
                         n_heads_kept=len(heads), lens_itemsize=hf.dtype.itemsize)
    check_fits(parts, batch.input_ids.device, n_prompts, seq_len)
    recorder = Recorder(hf, model.spec, plan, layers, heads, kept, seq_len, batch.input_ids.device)
    with recorder.hooks():
        out = hf(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                 use_cache=False, logits_to_keep=logits_to_keep, **{RECORDER_KWARG: recorder})
    return recorder, out.logits


def lens_logprobs(model, hidden: torch.Tensor) -> torch.Tensor:
    """Logit lens: the model's final norm and unembedding (and final softcap) on residual states, as fp32 log-probs."""
    hf, spec = model.hf, model.spec
    logits = get_path(hf, spec.unembed)(get_path(hf, spec.final_norm)(hidden))
    cap = getattr(hf.config, spec.logit_softcap_attr, None) if spec.logit_softcap_attr else None
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return torch.log_softmax(logits.float(), dim=-1)


@torch.no_grad()
def compute_lens(model, rows: torch.Tensor, targets: torch.Tensor, k: int):
    """Top-k, target-token probability and target rank (1 = top) for residual rows [n, d] and targets [n].

    All rows go through the unembedding together, in chunks, so the vocabulary
    matrix is read once per chunk rather than once per layer or position.
    """
    n = rows.shape[0]
    top_ids = torch.empty(n, k, dtype=torch.long, device=rows.device)
    top_probs = torch.empty(n, k, device=rows.device)
    target_prob = torch.empty(n, device=rows.device)
    target_rank = torch.empty(n, dtype=torch.int32, device=rows.device)
    step = max(1, LENS_CHUNK_BYTES // (model.info.vocab_size * 4))
    for start in range(0, n, step):
        sl = slice(start, start + step)
        logp = lens_logprobs(model, rows[sl])
        vals, ids = logp.topk(k, dim=-1)
        top_ids[sl], top_probs[sl] = ids, vals.exp()
        target_logp = logp.gather(-1, targets[sl, None])
        target_prob[sl] = target_logp.squeeze(-1).exp()
        target_rank[sl] = 1 + (logp > target_logp).sum(-1).to(torch.int32)
    return top_ids, top_probs, target_prob, target_rank


def batch_lens(model, recorder: Recorder, final_logp: torch.Tensor, pads: list[int], lens_positions: list[list[int]],
               lengths: list[int], k: int) -> list[LogitLens]:
    """The logit lens of every captured layer at each prompt's chosen positions, in one pass over the vocabulary.

    Positions not chosen hold top id -1, NaN probabilities and rank 0 (the writer skips them).
    """
    index = [torch.tensor([pad + p for p in pos], device=final_logp.device) for pad, pos in zip(pads, lens_positions)]
    rows = torch.cat([recorder.lens_residual[b][:, idx].reshape(-1, recorder.lens_residual.shape[-1])
                      for b, idx in enumerate(index)])
    n_layers = recorder.lens_residual.shape[1]
    targets = torch.cat([final_logp[b, idx].argmax(-1).repeat(n_layers) for b, idx in enumerate(index)])
    ids, probs, target, rank = (x.cpu().numpy() for x in compute_lens(model, rows, targets, k))
    out, offset = [], 0
    for pos, n in zip(lens_positions, lengths):
        size = n_layers * len(pos)
        cut = slice(offset, offset + size)
        lens = LogitLens(np.full((n_layers, n, k), -1, dtype=np.int64), np.full((n_layers, n, k), np.nan, np.float32),
                         np.full((n_layers, n), np.nan, np.float32), np.zeros((n_layers, n), np.int32))
        lens.top_ids[:, pos] = ids[cut].reshape(n_layers, len(pos), k)
        lens.top_probs[:, pos] = probs[cut].reshape(n_layers, len(pos), k)
        lens.target_prob[:, pos] = target[cut].reshape(n_layers, len(pos))
        lens.target_rank[:, pos] = rank[cut].reshape(n_layers, len(pos))
        out.append(lens)
        offset += size
    return out


def build_traces(model, prompts: list[str], ids: list[list[int]], batch: Batch, plan: CapturePlan,
                 recorder: Recorder, logits: torch.Tensor, positions: list[int],
                 expected: list[dict[int, list[int]]]) -> list[Trace]:
    """Slice the batch buffers into one Trace per prompt, padding removed."""
    from lmxray import __version__

    final_logp = torch.log_softmax(logits.float(), dim=-1)
    lens = None
    if plan.lens:
        lens_positions = [plan.resolve_lens_positions(len(x), p) for x, p in zip(ids, positions)]
        lens = batch_lens(model, recorder, final_logp, batch.pads, lens_positions, [len(x) for x in ids], plan.top_k)
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    traces = []
    for b, (prompt, token_ids) in enumerate(zip(prompts, ids)):
        pad, n = batch.pads[b], len(token_ids)
        p = positions[b]
        vals, top = final_logp[b, pad + p].topk(plan.top_k)
        top_k = [TokenScore(int(i), model.token_text(int(i)), float(v.exp())) for v, i in zip(vals, top)]
        kept_rows = recorder.kept_rows[b]
        valid = kept_rows >= 0
        kept_real = (kept_rows[valid] - pad).cpu().numpy()
        trace = Trace(
            model=model.info, prompt=prompt, token_ids=list(token_ids), tokens=model.token_texts(token_ids),
            position=p, top_k=top_k, expected_attention=expected[b], capture=plan.to_dict(),
            layers=recorder.layers, heads=recorder.heads if plan.per_head else [],
            version=__version__, created=created,
        )
        if recorder.attention is not None:
            trace.attention = _place_rows(recorder.attention[b][:, valid, pad:], kept_real, n, axis=1)
            if p in set(kept_real.tolist()):
                trace.attention_mass = trace.attention[:, p, :].sum(0)
        if recorder.attention_heads is not None:
            trace.attention_heads = _place_rows(recorder.attention_heads[b][:, :, valid, pad:], kept_real, n, axis=2)
        if recorder.entropy is not None:
            trace.entropy = _place_rows(recorder.entropy[b][:, :, valid, None], kept_real, n, axis=2, fill=np.nan)[..., 0]
        for name, (norm, values) in recorder.summaries.items():
            trace.components[name] = ComponentData(
                norm=norm[b, :, pad:].cpu().numpy(),
                values=None if values is None else values[b, :, pad:].cpu().numpy(),
            )
        if lens is not None:
            trace.lens = lens[b]
        traces.append(trace)
    return traces


def _place_rows(rows: torch.Tensor, kept: np.ndarray, n: int, axis: int, fill: float = 0.0) -> np.ndarray:
    """Scatter kept query rows (along ``axis``) into a full [.., n, ..] array; other rows get ``fill``."""
    src = rows.cpu().numpy()
    shape = list(src.shape)
    shape[axis] = n
    out = np.full(shape, fill, dtype=np.float32)
    index = [slice(None)] * len(shape)
    index[axis] = kept
    out[tuple(index)] = src
    return out
