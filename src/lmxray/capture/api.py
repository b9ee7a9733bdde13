"""The one capture entry point: token ids and a plan in, one traced forward pass, a ``Captured`` out.

Every caller (``Model.trace``, sweeps, profiles, head probes, flow's frozen pass)
goes through ``capture()``: batching with left padding, the pad token, kept rows
and negative positions are resolved here once, and the memory budget is checked
before the forward pass.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from lmxray.capture.batch import Batch, pad_token_id, resolve_positions, resolve_rows
from lmxray.capture.budget import buffer_bytes, check_fits
from lmxray.capture.plan import CapturePlan
from lmxray.capture.recorder import Recorder
from lmxray.errors import LmxrayError


@dataclass
class Captured:
    """One traced forward pass over a batch. Tensors are on the model's device, ``[layer, batch, ...]``.

    Per-prompt accessors return views with padding removed (no copies); ``rows`` lists each
    prompt's kept query positions (None: all of them, and the row axis is the query axis).
    """

    batch: Batch
    plan: CapturePlan
    layers: list[int]  # model layers on axis 0
    heads: list[int]  # heads kept in the per-head maps
    rows: list[list[int]] | None  # kept query positions per prompt, real indices; None = every row
    logits: torch.Tensor  # [batch, logit position, vocab]: final logits at `logit_positions`
    logit_positions: list[int] | None  # padded positions of the logits' rows; None = every position
    _recorder: Recorder

    @property
    def attention(self) -> torch.Tensor | None:
        """Head-summed maps [layer, batch, row, k_pos] (rows: padded query axis when dense, else kept slots)."""
        return self._recorder.attention

    @property
    def attention_heads(self) -> torch.Tensor | None:
        """Per-head maps [layer, batch, head, row, k_pos]."""
        return self._recorder.attention_heads

    @property
    def entropy(self) -> torch.Tensor | None:
        """Row entropy in nats [layer, batch, head, row]."""
        return self._recorder.entropy

    def summary(self, name: str) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """(norm [layer, batch, pos, ...], first values [layer, batch, pos, ..., n] or None) of a component;
        None when the plan did not keep it."""
        return self._recorder.summaries.get(name)

    @property
    def lens_residual(self) -> torch.Tensor | None:
        """Residual leaving each captured layer [layer, batch, pos, d_model] (model dtype), for the logit lens."""
        return self._recorder.lens_residual

    @property
    def frozen(self):
        """The frozen quantities (``FrozenTaps``) when the plan set ``frozen``, else None."""
        return self._recorder.frozen

    def real(self, b: int, tensor: torch.Tensor, query_axis: int | None, key_axis: int | None) -> torch.Tensor:
        """Prompt ``b``'s block ``[layer, ...]`` of a ``[layer, batch, ...]`` tensor, its left padding cut from
        the given axes (numbered in the block, layer = 0): a view, no copy."""
        pad = self.batch.pads[b]
        index: list = [slice(None)] * (tensor.dim() - 1)
        for axis in (query_axis, key_axis):
            if axis is not None:
                index[axis] = slice(pad, None)
        return tensor[:, b][tuple(index)]

    def logits_at(self, b: int, position: int) -> torch.Tensor:
        """Final logits [vocab] of prompt ``b`` at a real position (which must have been unembedded)."""
        padded = self.batch.pads[b] + position
        row = padded if self.logit_positions is None else self.logit_positions.index(padded)
        return self.logits[b, row]


@torch.no_grad()
def capture(model, ids: list[list[int]], plan: CapturePlan | None = None, *, rows="all",
            logits_at="all") -> Captured:
    """One traced forward pass of ``model`` over the prompts ``ids`` (token ids, one list per prompt).

    ``rows``: query rows whose attention is kept — ``"all"``, ``"last"``, or positions (one list for
    every prompt or one per prompt; negative counts from the end). ``logits_at``: where the final
    logits are computed — ``"all"``, ``"last"``, or positions like ``rows``; the unembedding of a
    small model is a large share of its work, so callers ask only for what they read.
    """
    plan = located(plan or CapturePlan(), model.spec)
    batch = Batch.from_ids(ids, pad_token_id(model.tokenizer), model.device)
    lengths, seq_len, n_prompts = batch.lengths, batch.input_ids.shape[1], len(ids)
    kept = resolve_rows(rows, lengths)
    layers = attending_layers(plan, model.spec, model.info.n_layers)
    heads = plan.resolve_heads(model.info.n_heads)
    slots = None
    if kept is not None:  # prompts keep different row counts: pad with -1 (never matched)
        width = max(len(k) for k in kept)
        slots = np.array([[pad + p for p in k] + [-1] * (width - len(k)) for pad, k in zip(batch.pads, kept)],
                         dtype=np.int64)
    parts = buffer_bytes(model.hf.config, plan, batch=n_prompts, seq_len=seq_len,
                         kept_rows=seq_len if slots is None else slots.shape[1], n_layers=len(layers),
                         n_heads_kept=len(heads), lens_itemsize=model.hf.dtype.itemsize)
    check_fits(parts, batch.input_ids.device, n_prompts, seq_len, copies_on_host=1 if kept is None else 2)
    positions = _logit_positions(logits_at, batch)
    keep = 0 if positions is None else (1 if positions == [seq_len - 1] else torch.tensor(positions, device=model.device))
    recorder = Recorder(model.hf, model.spec, plan, layers, heads, slots, seq_len, n_prompts, batch.input_ids.device)
    with recorder.hooks():
        out = model.hf(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                       use_cache=False, logits_to_keep=keep)
    missed = recorder.uncalled_layers()
    if missed:
        raise LmxrayError(f"the attention of layer {missed[0]} did not go through transformers' attention interface, "
                          "so lmxray recorded nothing for it", "trace another model (see: lmxray models --support)")
    return Captured(batch, plan, layers, heads, kept, out.logits, positions, recorder)


def located(plan: CapturePlan, spec) -> CapturePlan:
    """The plan without the components the spec cannot locate (a model found by inspection may not say where its
    MLP output is, or its layers' key/value heads differ); the trace records the plan it got, so what was dropped
    shows there."""
    where = {"attention_output": spec.attn_contribution, "mlp_output": spec.mlp_contribution,
             "mlp_hidden": None if spec.moe_experts else spec.mlp_down}  # experts have no one hidden state
    if not spec.uniform_heads:  # key/value heads or widths vary by layer: no one [layer, pos, head, ...] array
        where.update(query=None, key=None, value=None)
    kept = tuple(c for c in plan.components if where.get(c, "") is not None)
    return plan if kept == plan.components else dataclasses.replace(plan, components=kept)


def attending_layers(plan: CapturePlan, spec, n_layers: int) -> list[int]:
    """The plan's layers; a hybrid model's default is its attention layers, and a layer without attention is refused."""
    if plan.layers is None and spec.attention_layers is not None:
        return list(spec.attention_layers)
    layers = plan.resolve_layers(n_layers)
    idle = [i for i in layers if not spec.attends(i)]
    if idle:
        some = ", ".join(map(str, spec.attention_layers[:8])) + (", ..." if len(spec.attention_layers) > 8 else "")
        raise LmxrayError(f"layer {idle[0]} of this model has no attention (a hybrid of attention and other layers)",
                          f"capture its attention layers: {some}", params=("layers",))
    return layers


def _logit_positions(logits_at, batch: Batch) -> list[int] | None:
    """Sorted padded positions to unembed (the union over prompts), or None for every position."""
    if logits_at == "all":
        return None
    seq_len = batch.input_ids.shape[1]
    if logits_at == "last":
        return [seq_len - 1]  # left padding puts every prompt's last token last
    per_prompt = resolve_positions(logits_at, batch.lengths)
    wanted = {pad + p for pad, ps in zip(batch.pads, per_prompt) for p in ps}
    return None if len(wanted) == seq_len else sorted(wanted)
