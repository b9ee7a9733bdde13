"""The recorder: buffers filled during one batched forward pass by the attention function and module hooks.

Private to ``lmxray.capture``: callers get a ``Captured`` from ``capture()``.
Buffers live on the model's device, are allocated before the forward pass and
hold only what the plan asks for. Their layout is ``[layer, batch, ...]`` so one
layer's block is contiguous. When every prompt keeps all its query rows
("dense"), the row axis is the padded query axis and per-prompt arrays are views
of the buffers; otherwise it holds each prompt's kept rows ("slots").
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from lmxray.adapters import ArchSpec, get_path
from lmxray.capture.attention import RECORDER_ATTR
from lmxray.capture.frozen_taps import FrozenTaps
from lmxray.capture.plan import CapturePlan
from lmxray.errors import LmxrayError
from lmxray.trace.types import PER_HEAD_COMPONENTS

ONE_PASS_SHARE = 0.5  # one probability pass when the plan needs at least this share of the query rows


class Recorder:
    """Collects one batch: attention maps, row entropy, component summaries, lens residuals, frozen quantities.

    ``kept`` [batch, slots] holds, per prompt, the padded indices of the query rows kept (-1: none);
    None when every prompt keeps every row.
    """

    def __init__(self, hf_model, spec: ArchSpec, plan: CapturePlan, layers: list[int], heads: list[int],
                 kept: np.ndarray | None, seq_len: int, batch: int, device: torch.device):
        self.plan, self.spec, self.hf_model = plan, spec, hf_model
        self.layers, self.heads, self.seq_len, self.batch, self.device = layers, heads, seq_len, batch, device
        self.dense = kept is None
        self._kept = kept
        needed = None if self.dense else np.unique(kept[kept >= 0])  # sorted padded rows any prompt keeps
        self.rows_needed = needed
        self.rows_index = None if needed is None else torch.as_tensor(needed, device=device)  # copied once per batch
        self._targets: dict[tuple[int, int, bool], tuple[torch.Tensor, ...] | None] = {}
        blocks = get_path(hf_model, spec.layers)
        self.blocks = [blocks[i] for i in layers]
        self._slot = {id(get_path(b, spec.attention)): i for i, b in enumerate(self.blocks)}
        self._called: set[int] = set()  # slots whose attention went through the attention function
        text = hf_model.config.get_text_config()
        n_heads = self.n_heads = text.num_attention_heads
        self.d_model, self._head_shape = text.hidden_size, None
        self._full_heads = heads == list(range(n_heads))
        rows = seq_len if self.dense else kept.shape[1]
        shape = (len(layers), batch)
        zeros = lambda *s: torch.zeros(*shape, *s, device=device)  # noqa: E731
        self.attention = zeros(rows, seq_len) if plan.attention else None  # [layer, batch, row, k_pos]
        self.attention_heads = zeros(len(heads), rows, seq_len) if plan.per_head else None  # [layer, batch, head, row, k_pos]
        self.entropy = zeros(n_heads, rows) if plan.row_stats else None  # [layer, batch, head, row]
        self.summaries: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self.lens_residual: torch.Tensor | None = None  # [layer, batch, pos, d_model]
        self.frozen = FrozenTaps(hf_model, spec, self.blocks) if plan.frozen else None

    # -- attention function callbacks -------------------------------------------------
    @property
    def wants_entropy(self) -> bool:
        return self.plan.row_stats

    def wants_probabilities(self, module) -> bool:
        p = self.plan
        return id(module) in self._slot and (p.attention or p.per_head or p.row_stats)

    def check_shapes(self, module, query, key) -> None:
        """Refuse attention the buffers cannot hold: keys that are not the prompt's tokens (memory or compressed
        keys), or a head count other than the config's."""
        slot = self._slot.get(id(module))
        if slot is None:
            return
        layer = self.layers[slot]
        if key.shape[2] != self.seq_len or query.shape[2] != self.seq_len:
            raise LmxrayError(f"layer {layer} attends with {query.shape[2]} queries over {key.shape[2]} keys for "
                              f"{self.seq_len} tokens (memory or compressed keys)",
                              "lmxray records token-to-token attention; trace another model")
        if query.shape[1] != self.n_heads:
            raise LmxrayError(f"layer {layer} has {query.shape[1]} attention heads where the config says "
                              f"{self.n_heads}", "lmxray records models with one head count; trace another model")
        if not set(self.plan.components) & set(PER_HEAD_COMPONENTS):
            return  # the maps and entropy need one query head count only
        shape = (key.shape[1], query.shape[-1], key.shape[-1])  # key/value heads, query and key widths
        self._head_shape = self._head_shape or shape
        if shape != self._head_shape:
            raise LmxrayError(f"layer {layer} has {shape[0]} key/value heads of width {shape[2]} where layer "
                              f"{self.layers[0]} has {self._head_shape[0]} of width {self._head_shape[2]}",
                              "lmxray records models whose layers share one head shape; trace another model")

    def one_pass(self, q_len: int) -> bool:
        """Whether probabilities of every row should make the output (see attention.py)."""
        return self.rows_needed is None or self.rows_needed.size >= ONE_PASS_SHARE * q_len

    def on_probabilities(self, module, start: int, probs: torch.Tensor, query_rows: bool,
                         entropy: torch.Tensor | None = None, first_key: int = 0) -> None:
        """Fold fp32 probabilities [batch, head, rows, keys] (and their row entropy) into the buffers.

        The chunk begins at ``start`` among the query rows (``query_rows``) or among ``rows_needed``;
        its keys begin at ``first_key`` (the others are masked for every row of the chunk).
        """
        slot = self._slot[id(module)]
        keys = slice(first_key, first_key + probs.shape[-1])
        if entropy is None and self.entropy is not None:
            entropy = torch.special.entr(probs).sum(-1)
        if self.dense:
            rows = slice(start, start + probs.shape[2])
            if self.attention is not None:
                self.attention[slot, :, rows, keys] = probs.sum(1)
            if self.attention_heads is not None:
                self.attention_heads[slot, :, :, rows, keys] = probs if self._full_heads else probs[:, self.heads]
            if self.entropy is not None:
                self.entropy[slot, :, :, rows] = entropy
            return
        targets = self._chunk_targets(start, probs.shape[2], query_rows)
        if targets is None:
            return
        prompt, dest, local = targets  # each kept (prompt, row) lands by one gather and one scatter
        block = probs[prompt, :, local]  # [kept in chunk, head, k_pos]
        if self.attention is not None:
            self.attention[slot, :, :, keys][prompt, dest] = block.sum(1)
        if self.attention_heads is not None:
            self.attention_heads[slot, :, :, :, keys][prompt, :, dest] = block if self._full_heads else block[:, self.heads]
        if self.entropy is not None:
            self.entropy[slot][prompt, :, dest] = entropy[prompt, :, local]

    def _chunk_targets(self, start: int, n_rows: int, query_rows: bool):
        """(prompt, kept slot, row within the chunk) of every kept row in a chunk, as device index tensors;
        None when the chunk holds none. Worked out on the host once per chunk and reused by every layer."""
        key = (start, n_rows, query_rows)
        if key not in self._targets:
            index = np.arange(self.seq_len) if query_rows else self.rows_needed
            chunk = index[start:start + n_rows]
            local = np.searchsorted(chunk, self._kept).clip(max=n_rows - 1)
            prompt, dest = np.nonzero((self._kept >= 0) & (chunk[local] == self._kept))
            self._targets[key] = None if prompt.size == 0 else tuple(
                torch.as_tensor(x, device=self.device) for x in (prompt, dest, local[prompt, dest]))
        return self._targets[key]

    def on_qkv(self, module, query, key, value) -> None:
        """Summarise post-RoPE q/k/v ([batch, head, pos, d_head]) per head and position (every call while tracing)."""
        slot = self._slot.get(id(module))
        if slot is None:
            return
        self._called.add(slot)
        for name, tensor in zip(PER_HEAD_COMPONENTS, (query, key, value)):
            if name in self.plan.components:
                self._store(name, slot, tensor.transpose(1, 2))  # [batch, pos, head, d_head]

    def uncalled_layers(self) -> list[int]:
        """Captured layers whose attention never reached the attention function (checked after the forward)."""
        return [layer for slot, layer in enumerate(self.layers) if slot not in self._called]

    # -- module hooks -----------------------------------------------------------------
    @contextmanager
    def hooks(self):
        """Register every hook of the capture (components, lens, frozen quantities) for one forward pass."""
        spec, handles = self.spec, []
        want = set(self.plan.components)
        attention = [get_path(b, spec.attention) for b in self.blocks]
        try:
            for module in attention:  # the attention function finds the recorder on the module it is called with
                setattr(module, RECORDER_ATTR, self)
            first = get_path(self.hf_model, spec.layers)[0]
            if "input_embedding" in want:
                handles.append(first.register_forward_pre_hook(self._embedding_hook, with_kwargs=True))
            for slot, block in enumerate(self.blocks):
                if "residual" in want or self.plan.lens:
                    handles.append(block.register_forward_hook(self._output_hook("residual", slot)))
                if "attention_output" in want:  # capture() keeps only the components the spec can locate
                    module = get_path(block, spec.attn_contribution)
                    handles.append(module.register_forward_hook(self._output_hook("attention_output", slot)))
                if "mlp_output" in want:
                    module = get_path(block, spec.mlp_contribution)
                    handles.append(module.register_forward_hook(self._output_hook("mlp_output", slot)))
                if "mlp_hidden" in want:
                    handles.append(get_path(block, spec.mlp_down).register_forward_pre_hook(self._mlp_hidden_hook(slot)))
            if self.frozen is not None:
                handles.extend(self.frozen.register())
            yield self
        finally:
            for h in handles:
                h.remove()
            for module in attention:
                module.__dict__.pop(RECORDER_ATTR, None)

    def _embedding_hook(self, module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        self._store("input_embedding", 0, hidden, n_layers=1)

    def _output_hook(self, name: str, slot: int):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, (tuple, list)) else output  # [batch, pos, d_model]
            if name == "residual" and hidden.shape != (self.batch, self.seq_len, self.d_model):
                raise LmxrayError(f"layer {self.layers[slot]} outputs a {list(hidden.shape)} tensor, not one residual "
                                  f"vector of {self.d_model} per token (several residual streams?)",
                                  "capture attention only: CapturePlan(components=(), lens=False)")
            if name in self.plan.components:
                self._store(name, slot, hidden)
            if name == "residual" and self.plan.lens:
                if self.lens_residual is None:
                    self.lens_residual = hidden.new_zeros(len(self.layers), *hidden.shape)
                self.lens_residual[slot] = hidden.detach()
        return hook

    def _mlp_hidden_hook(self, slot: int):
        def hook(module, args):
            self._store("mlp_hidden", slot, args[0])
        return hook

    def _store(self, name: str, slot: int, tensor: torch.Tensor, n_layers: int | None = None) -> None:
        """Keep the L2 norm (fp32) and the first ``n_values`` floats of each vector (last axis); ``[layer, batch, ...]``."""
        tensor = tensor.detach()
        if tensor.dim() == 2:  # [batch * pos, width]: layers that flatten the tokens around their MLP (OPT)
            tensor = tensor.view(self.batch, self.seq_len, -1)
        n = tensor.shape[-1] if self.plan.n_values is None else min(self.plan.n_values, tensor.shape[-1])
        if name not in self.summaries:
            layers = n_layers or len(self.layers)
            norm = torch.zeros(layers, *tensor.shape[:-1], device=tensor.device)
            values = torch.zeros(layers, *tensor.shape[:-1], n, device=tensor.device) if n else None
            self.summaries[name] = (norm, values)
        norm, values = self.summaries[name]
        torch.linalg.vector_norm(tensor.float(), dim=-1, out=norm[slot])
        if values is not None:
            values[slot] = tensor[..., :n]
