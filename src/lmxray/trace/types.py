"""In-memory record of one traced forward pass (one prompt).

Everything is numpy, on the CPU, indexed by *real* token positions (padding
already removed). Arrays with a layer axis follow ``Trace.layers``: axis 0
entry ``i`` is model layer ``layers[i]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmxray.trace.fields import COMPONENTS, PER_HEAD_COMPONENTS, SCHEMA  # noqa: F401  (re-exported)


@dataclass
class ModelInfo:
    """Identity of the traced model, written to the meta record."""

    name: str
    source: str  # "builtin", "gguf", "hf-dir", "hf-cache", "random", "in-memory"
    sha256: str | None
    architecture: str  # HF model_type, e.g. "llama"
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    vocab_size: int
    dtype: str  # e.g. "float32"


@dataclass
class TokenScore:
    """One candidate next token with its probability (softmax of the final logits)."""

    token_id: int
    text: str
    prob: float


@dataclass
class ComponentData:
    """Summaries of one captured component.

    ``norm`` is the L2 norm over the last axis of the full vector; ``values``
    holds its first ``n`` floats (all of them when the plan asked for full
    vectors). Shapes: ``[layer, pos]`` / ``[layer, pos, n]``, with a head axis
    before the last for per-head components (``[layer, pos, head]``).
    """

    norm: np.ndarray
    values: np.ndarray | None = None


@dataclass
class LogitLens:
    """Logit lens: final norm + unembedding applied to each layer's residual.

    ``top_ids``/``top_probs``: ``[layer, pos, k]``. ``target_prob``: ``[layer, pos]``,
    the probability given at each layer to the token the full model predicts at
    that position (the final layer's top-1). ``target_rank``: ``[layer, pos]``, that
    token's rank among the whole vocabulary at each layer (1 = top; 0 = not recorded).
    """

    top_ids: np.ndarray
    top_probs: np.ndarray
    target_prob: np.ndarray
    target_rank: np.ndarray | None = None


@dataclass
class Trace:
    """One prompt's forward pass: prediction, attention and component summaries."""

    model: ModelInfo
    prompt: str
    token_ids: list[int]
    tokens: list[str]  # readable text per token (no raw BPE markers)
    position: int  # prediction position (non-negative) the top-k refers to
    top_k: list[TokenScore]  # candidates at `position`, best first
    expected_attention: dict[int, list[int]] = field(default_factory=dict)  # query pos -> key pos, non-negative
    capture: dict = field(default_factory=dict)  # the capture settings (plan + threshold)
    layers: list[int] = field(default_factory=list)  # model layers present on axis 0 of layered arrays
    heads: list[int] = field(default_factory=list)  # heads present in `attention_heads`
    attention: np.ndarray | None = None  # [layer, q_pos, k_pos], summed over all heads
    attention_heads: np.ndarray | None = None  # [layer, head, q_pos, k_pos]
    entropy: np.ndarray | None = None  # [layer, n_heads, q_pos]: entropy (nats) of each attention row
    components: dict[str, ComponentData] = field(default_factory=dict)
    lens: LogitLens | None = None
    attention_mass: np.ndarray | None = None  # [k_pos]: exact mass at `position`, summed over layers and heads
    version: str = ""
    created: str = ""
    maps_threshold: float | None = None  # maps were read from edges cut at this weight (JSONL); None: as captured

    @property
    def predicted_token(self) -> int:
        return self.top_k[0].token_id

    @property
    def predicted_text(self) -> str:
        return self.top_k[0].text

    @property
    def confidence(self) -> float:
        return self.top_k[0].prob

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    def save(self, path, threshold: float | None = None) -> None:
        """Write the trace atomically: dense ``.safetensors`` by that suffix, else JSONL (docs/trace-format.md).

        ``threshold`` (JSONL only) leaves out edges below it; it defaults to the capture plan's.
        """
        from pathlib import Path

        if Path(path).suffix.lower() == ".safetensors":
            from lmxray.errors import LmxrayError
            from lmxray.trace.dense import write_dense

            if threshold is not None:
                raise LmxrayError("threshold applies to JSONL traces only", "a .safetensors trace keeps every weight")

            write_dense(self, path)
        else:
            from lmxray.trace.writer import write_trace

            write_trace(self, path, threshold=threshold)
