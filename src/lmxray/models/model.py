"""Model: an HF causal LM with its tokenizer, architecture spec and identity; the entry point for tracing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from lmxray.capture import CapturePlan, capture, resolve_position
from lmxray.capture.build import build_traces, lens_positions
from lmxray.errors import LmxrayError
from lmxray.adapters import ArchSpec
from lmxray.trace.types import ModelInfo, Trace

_TEXT_CONTEXT = 4  # tokens of left context used to decode one token's text faithfully


@dataclass(frozen=True)
class Origin:
    """What a loaded model's weights were made from; the run store hashes it into the model's identity."""

    path: Path  # the HF-style directory loaded (for a GGUF, its cached conversion)
    init: str  # "pretrained" | "random"
    seed: int | None  # the random init's seed; None when pretrained


@dataclass
class Model:
    """A loaded model. ``hf`` uses lmxray's registered attention, which equals SDPA when not tracing."""

    hf: torch.nn.Module
    tokenizer: object
    spec: ArchSpec
    info: ModelInfo
    origin: Origin | None = None  # None: wrapped in memory (loader.from_hf), no files behind it

    @property
    def device(self) -> torch.device:
        """Where inputs go: the input embedding's device, or where it runs when a device map keeps its weights
        elsewhere (offloaded to the host or to disk, its parameters are weightless "meta" tensors)."""
        embed = self.hf.get_input_embeddings()
        runs_on = getattr(getattr(embed, "_hf_hook", None), "execution_device", None)  # set by accelerate
        if runs_on is not None:
            return torch.device(runs_on)
        weight = getattr(embed, "weight", None)
        return weight.device if isinstance(weight, torch.Tensor) else next(self.hf.parameters()).device

    @property
    def vocab_size(self) -> int:
        """Rows of the output head: the most candidates a top-k can list."""
        head = self.hf.get_output_embeddings()
        return int(head.weight.shape[0]) if head is not None else int(self.hf.config.vocab_size)

    @property
    def max_positions(self) -> int | None:
        return getattr(self.hf.config, "max_position_embeddings", None)

    # -- tokens -----------------------------------------------------------------------
    def encode(self, prompt: str) -> list[int]:
        """Token ids as the model sees them (special tokens such as BOS included), with input checks."""
        if not isinstance(prompt, str):
            raise LmxrayError(f"a prompt must be text, got {type(prompt).__name__}",
                              "pass a str (decode bytes first), or token ids to Model.trace")
        if not prompt.strip():
            raise LmxrayError("the prompt is empty", "pass some text to trace")
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError as e:  # undecodable command-line bytes arrive as lone surrogates
            raise LmxrayError(f"the prompt is not valid UTF-8 text (at character {e.start})",
                              "pass the prompt as UTF-8 (check the terminal's encoding)") from None
        ids = self.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        limit = self.max_positions
        if limit and len(ids) > limit:
            raise LmxrayError(
                f"the prompt is {len(ids)} tokens, longer than the model's context of {limit}",
                "shorten the prompt",
            )
        return list(ids)

    def token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id], skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def token_texts(self, ids: list[int]) -> list[str]:
        """Readable text of each token in context (leading spaces kept, no BPE markers)."""
        texts = []
        for i in range(len(ids)):
            left = ids[max(0, i - _TEXT_CONTEXT):i]
            before = self.tokenizer.decode(left, skip_special_tokens=False, clean_up_tokenization_spaces=False)
            both = self.tokenizer.decode(left + [ids[i]], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            texts.append(both[len(before):] if both.startswith(before) else self.token_text(ids[i]))
        return texts

    # -- tracing ----------------------------------------------------------------------
    def trace(self, prompts: str | list[int] | list[str | list[int]], *, plan: CapturePlan | None = None,
              position: int = -1, expect: dict | None = None) -> Trace | list[Trace]:
        """Trace one prompt (returns a Trace) or several, batched with left padding (returns a list).

        A prompt is text or a list of token ids (used as given). ``position`` is the prediction
        position (negative counts from the end); ``expect`` maps query positions to expected key
        positions, as in ``{"-1": [0, 4]}``.
        """
        if not isinstance(prompts, (str, list, tuple)):
            raise LmxrayError(f"prompts must be text, token ids or a list of them, got {type(prompts).__name__}",
                              'pass e.g. "The capital of France is" or ["Paris is in", "Rome is in"]')
        single = isinstance(prompts, str) or _is_ids(prompts)
        prompt_list = [prompts] if single else list(prompts)
        if not prompt_list:
            raise LmxrayError("no prompts given", "pass at least one prompt")
        plan = plan or CapturePlan()
        check_top_k(plan.top_k, self.vocab_size)
        ids = [self._ids(p) for p in prompt_list]
        texts = [p if isinstance(p, str) else self.tokenizer.decode(p) for p in prompt_list]
        predict = [resolve_position(position, len(x)) for x in ids]
        expected = [resolve_expected(expect or {}, len(x)) for x in ids]
        rows = "all" if plan.positions is None else [sorted(set(plan.positions) | {p}) for p in predict]
        logits_at = [lens_positions(plan, len(x), p) for x, p in zip(ids, predict)]
        captured = capture(self, ids, plan, rows=rows, logits_at=logits_at)
        traces = build_traces(self, captured, texts, predict, expected)
        return traces[0] if single else traces

    def _ids(self, prompt) -> list[int]:
        """A prompt's token ids: text is encoded, ids are checked against the vocabulary and the context."""
        if isinstance(prompt, str):
            return self.encode(prompt)
        if not _is_ids(prompt):
            raise LmxrayError(f"a prompt must be text or a list of token ids, got {type(prompt).__name__}",
                              "pass a string or a non-empty list of integers")
        bad = [i for i in prompt if not 0 <= i < self.vocab_size]
        if bad:
            raise LmxrayError(f"token id {bad[0]} is outside the vocabulary of {self.vocab_size} tokens",
                              f"use ids 0..{self.vocab_size - 1}")
        if self.max_positions and len(prompt) > self.max_positions:
            raise LmxrayError(f"the prompt is {len(prompt)} tokens, longer than the model's context of "
                              f"{self.max_positions}", "shorten the prompt")
        return list(prompt)

    @torch.no_grad()
    def logits(self, prompt: str) -> torch.Tensor:
        """Untraced final logits [pos, vocab] for one prompt (the reference the traces are checked against)."""
        ids = torch.tensor([self.encode(prompt)], device=self.device)
        return self.hf(input_ids=ids, use_cache=False).logits[0]


def check_top_k(top_k: int, vocab_size: int) -> None:
    """A top-k larger than the vocabulary cannot be listed."""
    if top_k > vocab_size:
        raise LmxrayError(f"top_k {top_k} is larger than the model's vocabulary of {vocab_size} tokens",
                          f"pass top_k {vocab_size} or less", params=("top_k",))


def _position_value(v) -> int:
    """One position of --expect: an integer (JSON 3 or "3"), never a bool or any float (1.5, 3.0 and 1e30 alike)."""
    if isinstance(v, (bool, float)):
        raise ValueError(v)
    return int(v)


def resolve_expected(expect: dict, n_tokens: int) -> dict[int, list[int]]:
    """Turn ``{"-1": [0, 4]}`` into non-negative positions, checking every one is in range."""
    if not isinstance(expect, dict):
        raise LmxrayError("--expect must be a JSON object like {\"-1\": [0, 4, 5]}", "fix the --expect value")
    out: dict[int, list[int]] = {}
    for key, values in expect.items():
        try:
            query = int(key)
            if not isinstance(values, (list, tuple)):
                raise TypeError(values)
            keys = [_position_value(v) for v in values]
        except (TypeError, ValueError, OverflowError):
            raise LmxrayError(
                f"--expect entry {key!r}: {values!r} is not position -> list of positions",
                'write it like {"-1": [0, 4, 5]}',
            ) from None
        q = resolve_position(query, n_tokens, "--expect query position")
        out[q] = sorted({resolve_position(k, n_tokens, "--expect key position") for k in keys})
    return out


def _is_ids(prompt) -> bool:
    """A non-empty list of plain integers (one prompt given as token ids)."""
    return isinstance(prompt, (list, tuple)) and bool(prompt) and all(
        isinstance(i, int) and not isinstance(i, bool) for i in prompt)
