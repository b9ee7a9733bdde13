"""Recorder: buffers filled during one batched forward pass, by hooks and the attention function.

Buffers live on the model's device and hold only what the plan asks for:
head-summed maps are accumulated chunk by chunk, so ``layers x heads x T x T``
is never materialised unless per-head maps were requested.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from lmxray.capture.plan import CapturePlan
from lmxray.models.adapters import ArchSpec, get_path
from lmxray.trace.types import PER_HEAD_COMPONENTS

_LAYER_COMPONENTS = ("attention_output", "mlp_hidden", "mlp_output", "residual")


class Recorder:
    """Collects one batch: attention maps, row entropy and component summaries.

    ``kept_rows`` [batch, rows] holds, per prompt, the padded indices of the
    query positions whose attention rows are kept (-1: none).
    """

    def __init__(self, hf_model, spec: ArchSpec, plan: CapturePlan, layers: list[int], heads: list[int],
                 kept_rows: np.ndarray, seq_len: int, device: torch.device):
        self.plan, self.spec, self.hf_model = plan, spec, hf_model
        self.layers, self.heads = layers, heads
        self._kept = kept_rows  # on the host: chunk targets are worked out here once, not per layer
        self.kept_rows = torch.as_tensor(kept_rows, device=device)
        needed = np.unique(self._kept[self._kept >= 0])  # sorted padded query rows any prompt keeps
        self._needed = None if needed.size == seq_len else needed
        self.rows_needed = None if self._needed is None else torch.as_tensor(needed, device=device)
        self._targets: dict[tuple[int, int, bool], tuple[torch.Tensor, ...] | None] = {}
        self.seq_len = seq_len
        self.batch = kept_rows.shape[0]
        self.device = device
        blocks = get_path(hf_model, spec.layers)
        self.blocks = [blocks[i] for i in layers]
        self._slot = {id(get_path(b, spec.attention)): i for i, b in enumerate(self.blocks)}
        self.attention = self.attention_heads = self.entropy = None
        self.summaries: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self.lens_residual: torch.Tensor | None = None  # [batch, layer, pos, d_model]
        self._full_heads = heads == list(range(hf_model.config.num_attention_heads))

    # -- attention function callbacks -------------------------------------------------
    def wants_probabilities(self, module) -> bool:
        p = self.plan
        return id(module) in self._slot and (p.attention or p.per_head or p.row_stats)

    def rows_per_chunk(self, query, key) -> int:
        per_row = query.shape[0] * query.shape[1] * key.shape[2] * 4
        return max(1, self.plan.chunk_bytes // per_row)

    def on_probabilities(self, module, start: int, probs: torch.Tensor, all_rows: bool) -> None:
        """Fold fp32 probabilities [batch, head, rows, k_pos] into the buffers.

        They are the chunk that begins at ``start`` in the row index: every query
        row when ``all_rows``, else ``rows_needed``. Each kept (prompt, row) lands
        through one gather and one scatter, with no host sync and no per-prompt loop.
        """
        slot = self._slot[id(module)]
        n_layers, n_heads, n_keys = len(self.layers), probs.shape[1], probs.shape[-1]
        n_kept = self.kept_rows.shape[1]
        if self.plan.attention and self.attention is None:
            self.attention = probs.new_zeros(self.batch, n_layers, n_kept, n_keys)
        if self.plan.per_head and self.attention_heads is None:
            self.attention_heads = probs.new_zeros(self.batch, n_layers, len(self.heads), n_kept, n_keys)
        if self.plan.row_stats and self.entropy is None:
            self.entropy = probs.new_zeros(self.batch, n_layers, n_heads, n_kept)
        targets = self._chunk_targets(start, probs.shape[2], all_rows)
        if targets is None:
            return
        prompt, dest, local = targets
        block = probs[prompt, :, local]  # [kept in chunk, head, k_pos]
        if self.attention is not None:
            self.attention[:, slot][prompt, dest] = block.sum(1)
        if self.attention_heads is not None:
            self.attention_heads[:, slot][prompt, :, dest] = block if self._full_heads else block[:, self.heads]
        if self.entropy is not None:
            self.entropy[:, slot][prompt, :, dest] = torch.special.entr(block).sum(-1)

    def _chunk_targets(self, start: int, n_rows: int, all_rows: bool):
        """(prompt, kept slot, row within the chunk) of every kept row in a chunk, as device index tensors;
        None when the chunk holds none. Worked out on the host once per chunk and reused by every layer."""
        key = (start, n_rows, all_rows)
        if key not in self._targets:
            index = np.arange(self.seq_len) if all_rows or self._needed is None else self._needed
            chunk = index[start:start + n_rows]
            local = np.searchsorted(chunk, self._kept).clip(max=n_rows - 1)
            prompt, dest = np.nonzero((self._kept >= 0) & (chunk[local] == self._kept))
            self._targets[key] = None if prompt.size == 0 else tuple(
                torch.as_tensor(x, device=self.device) for x in (prompt, dest, local[prompt, dest]))
        return self._targets[key]

    def on_qkv(self, module, query, key, value) -> None:
        """Summarise post-RoPE q/k/v ([batch, head, pos, d_head]) per head and position."""
        slot = self._slot.get(id(module))
        if slot is None:
            return
        for name, tensor in zip(PER_HEAD_COMPONENTS, (query, key, value)):
            if name in self.plan.components:
                self._store(name, slot, tensor.transpose(1, 2))  # [batch, pos, head, d_head]

    # -- module hooks -----------------------------------------------------------------
    @contextmanager
    def hooks(self):
        """Register the component hooks for the duration of one forward pass."""
        spec, handles = self.spec, []
        want = set(self.plan.components)
        try:
            first = get_path(self.hf_model, spec.layers)[0]
            if "input_embedding" in want:
                handles.append(first.register_forward_pre_hook(self._embedding_hook, with_kwargs=True))
            for slot, block in enumerate(self.blocks):
                if "residual" in want or self.plan.lens:
                    handles.append(block.register_forward_hook(self._output_hook("residual", slot)))
                if "attention_output" in want:
                    module = get_path(block, spec.attn_contribution)
                    handles.append(module.register_forward_hook(self._output_hook("attention_output", slot)))
                if "mlp_output" in want:
                    module = get_path(block, spec.mlp_contribution)
                    handles.append(module.register_forward_hook(self._output_hook("mlp_output", slot)))
                if "mlp_hidden" in want:
                    handles.append(get_path(block, spec.mlp_down).register_forward_pre_hook(self._mlp_hidden_hook(slot)))
            yield self
        finally:
            for h in handles:
                h.remove()

    def _embedding_hook(self, module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        self._store("input_embedding", 0, hidden, n_layers=1)

    def _output_hook(self, name: str, slot: int):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output  # [batch, pos, d_model]
            if name in self.plan.components:
                self._store(name, slot, hidden)
            if name == "residual" and self.plan.lens:
                if self.lens_residual is None:
                    self.lens_residual = hidden.new_zeros(self.batch, len(self.layers), *hidden.shape[1:])
                self.lens_residual[:, slot] = hidden.detach()
        return hook

    def _mlp_hidden_hook(self, slot: int):
        def hook(module, args):
            self._store("mlp_hidden", slot, args[0])
        return hook

    def _store(self, name: str, slot: int, tensor: torch.Tensor, n_layers: int | None = None) -> None:
        """Keep the L2 norm (fp32) and the first ``n_values`` floats of each vector (last axis)."""
        tensor = tensor.detach()
        n = tensor.shape[-1] if self.plan.n_values is None else min(self.plan.n_values, tensor.shape[-1])
        if name not in self.summaries:
            layers = n_layers or len(self.layers)
            norm = torch.zeros(self.batch, layers, *tensor.shape[1:-1], device=tensor.device)
            values = torch.zeros(self.batch, layers, *tensor.shape[1:-1], n, device=tensor.device) if n else None
            self.summaries[name] = (norm, values)
        norm, values = self.summaries[name]
        norm[:, slot] = torch.linalg.vector_norm(tensor.float(), dim=-1)
        if values is not None:
            values[:, slot] = tensor[..., :n].float()
