"""Turn a ``Captured`` batch into one Trace per prompt: padding removed, buffers shared rather than copied.

When every row is kept, a trace's arrays are views of the recorder's buffers (on
CPU no byte is copied); otherwise kept rows are spread into full arrays in one
scatter. The final log-softmax and the logit lens run only where they are read.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import torch

from lmxray.adapters import get_path
from lmxray.capture.api import Captured
from lmxray.trace.types import ComponentData, LogitLens, TokenScore, Trace
from lmxray.version import __version__

LENS_CHUNK_BYTES = 128 * 2**20  # bound on one fp32 [rows, vocab] logit-lens block


def lens_positions(plan, n_tokens: int, predict: int) -> list[int]:
    """Where the logit lens (and so the final unembedding) is needed for one prompt."""
    return plan.resolve_lens_positions(n_tokens, predict) if plan.lens else [predict]


def lens_logprobs(model, hidden: torch.Tensor) -> torch.Tensor:
    """Logit lens: the model's final norm, unembedding and logit scaling or softcap on residual states, as fp32 log-probs."""
    hf, spec = model.hf, model.spec
    normed = hidden if spec.final_norm is None else get_path(hf, spec.final_norm)(hidden)
    if spec.final_proj is not None:
        normed = get_path(hf, spec.final_proj)(normed)
    logits = spec.final_logits(get_path(hf, spec.unembed)(normed), hf.config.get_text_config())
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


def batch_lens(model, captured: Captured, positions: list[list[int]], k: int) -> list[LogitLens]:
    """The logit lens of every captured layer at each prompt's chosen positions, in one pass over the vocabulary.

    The target at a position is the full model's top-1 there. Positions not chosen hold top id -1,
    NaN probabilities and rank 0 (the writer skips them).
    """
    residual = captured.lens_residual  # [layer, batch, pos, d_model]
    n_layers = residual.shape[0]
    pads = captured.batch.pads
    rows = torch.cat([residual[:, b, [pads[b] + p for p in pos]].reshape(-1, residual.shape[-1])
                      for b, pos in enumerate(positions)])
    targets = torch.cat([torch.stack([captured.logits_at(b, p).argmax() for p in pos]).repeat(n_layers)
                         for b, pos in enumerate(positions)])
    ids, probs, target, rank = (x.cpu().numpy() for x in compute_lens(model, rows, targets, k))
    out, offset = [], 0
    for pos, n in zip(positions, captured.batch.lengths):
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


def build_traces(model, captured: Captured, prompts: list[str], predict: list[int],
                 expected: list[dict[int, list[int]]]) -> list[Trace]:
    """One Trace per prompt of a captured batch; ``predict`` is each prompt's prediction position."""
    plan, batch = captured.plan, captured.batch
    lens = None
    if plan.lens:
        wanted = [lens_positions(plan, n, p) for n, p in zip(batch.lengths, predict)]
        lens = batch_lens(model, captured, wanted, plan.top_k)
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    traces = []
    for b, (prompt, token_ids) in enumerate(zip(prompts, batch.ids)):
        p = predict[b]
        logp = torch.log_softmax(captured.logits_at(b, p).float(), dim=-1)
        vals, top = logp.topk(plan.top_k)
        top_k = [TokenScore(int(i), model.token_text(int(i)), float(v.exp())) for v, i in zip(vals, top)]
        trace = Trace(
            model=model.info, prompt=prompt, token_ids=list(token_ids), tokens=model.token_texts(token_ids),
            position=p, top_k=top_k, expected_attention=expected[b], capture=plan.to_dict(),
            layers=captured.layers, heads=captured.heads if plan.per_head else [],
            version=__version__, created=created,
        )
        _fill_maps(trace, captured, b)
        for name in plan.components:
            if captured.summary(name) is None:
                continue
            norm, values = captured.summary(name)
            trace.components[name] = ComponentData(
                norm=_host(captured.real(b, norm, 1, None)),
                values=None if values is None else _host(captured.real(b, values, 1, None)),
            )
        if lens is not None:
            trace.lens = lens[b]
        traces.append(trace)
    return traces


def _fill_maps(trace: Trace, captured: Captured, b: int) -> None:
    """Attention maps and row entropy of prompt ``b``: views when every row is kept, else one scatter."""
    n, kept = trace.n_tokens, None if captured.rows is None else np.asarray(captured.rows[b])
    plan = captured.plan
    if plan.attention:
        trace.attention = _rows(captured, captured.attention, b, 1, kept, n)  # [layer, q_pos, k_pos]
        if kept is None or trace.position in set(kept.tolist()):
            trace.attention_mass = trace.attention[:, trace.position, :].sum(0)
    if plan.per_head:
        trace.attention_heads = _rows(captured, captured.attention_heads, b, 2, kept, n)
    if plan.row_stats:
        trace.entropy = _rows(captured, captured.entropy, b, 2, kept, n, fill=np.nan, keys=False)


def _rows(captured: Captured, buffer: torch.Tensor, b: int, axis: int, kept: np.ndarray | None, n: int,
          fill: float = 0.0, keys: bool = True) -> np.ndarray:
    """Prompt ``b``'s maps with real rows on ``axis`` (per-prompt axes, layer first)."""
    if kept is None:
        return _host(captured.real(b, buffer, axis, axis + 1 if keys else None))
    block = captured.real(b, buffer, None, axis + 1 if keys else None)
    src = _host(block.narrow(axis, 0, len(kept)))
    shape = list(src.shape)
    shape[axis] = n
    out = np.full(shape, fill, dtype=np.float32)
    index = [slice(None)] * len(shape)
    index[axis] = kept
    out[tuple(index)] = src
    return out


def _host(t: torch.Tensor) -> np.ndarray:
    """A numpy view of a CPU tensor (no copy), or one copy from another device."""
    return t.detach().numpy() if t.device.type == "cpu" else t.detach().cpu().numpy()
