"""Model: an HF causal LM with its tokenizer, architecture spec and identity; the entry point for tracing."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lmxray.capture.plan import CapturePlan
from lmxray.capture.run import Batch, build_traces, capture_batch, resolve_position
from lmxray.errors import LmxrayError
from lmxray.models.adapters import ArchSpec
from lmxray.trace.types import ModelInfo, Trace

_TEXT_CONTEXT = 4  # tokens of left context used to decode one token's text faithfully


@dataclass
class Model:
    """A loaded model. ``hf`` uses lmxray's registered attention, which equals SDPA when not tracing."""

    hf: torch.nn.Module
    tokenizer: object
    spec: ArchSpec
    info: ModelInfo

    @property
    def device(self) -> torch.device:
        return next(self.hf.parameters()).device

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
        if not isinstance(prompt, str) or not prompt.strip():
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
    def trace(self, prompts: str | list[str], *, plan: CapturePlan | None = None, position: int = -1,
              expect: dict | None = None) -> Trace | list[Trace]:
        """Trace one prompt (returns a Trace) or several, batched with left padding (returns a list).

        ``position`` is the prediction position (negative counts from the end);
        ``expect`` maps query positions to expected key positions, as in ``{"-1": [0, 4]}``.
        """
        single = isinstance(prompts, str)
        prompt_list = [prompts] if single else list(prompts)
        if not prompt_list:
            raise LmxrayError("no prompts given", "pass at least one prompt")
        plan = plan or CapturePlan()
        check_top_k(plan.top_k, self.vocab_size)
        ids = [self.encode(p) for p in prompt_list]
        predict = [resolve_position(position, len(x)) for x in ids]
        expected = [resolve_expected(expect or {}, len(x)) for x in ids]
        kept = [_kept_positions(plan, len(x), p) for x, p in zip(ids, predict)]
        pad_id = self.tokenizer.pad_token_id
        pad_id = pad_id if pad_id is not None else (self.tokenizer.eos_token_id or 0)
        batch = Batch.from_ids(ids, pad_id, self.device)
        recorder, logits = capture_batch(self, batch, plan, kept)
        traces = build_traces(self, prompt_list, ids, batch, plan, recorder, logits, predict, expected)
        return traces[0] if single else traces

    @torch.no_grad()
    def logits(self, prompt: str) -> torch.Tensor:
        """Untraced final logits [pos, vocab] for one prompt (the reference the traces are checked against)."""
        ids = torch.tensor([self.encode(prompt)], device=self.device)
        return self.hf(input_ids=ids, use_cache=False).logits[0]


def check_top_k(top_k: int, vocab_size: int) -> None:
    """A top-k larger than the vocabulary cannot be listed."""
    if top_k > vocab_size:
        raise LmxrayError(f"--top-k {top_k} is larger than the model's vocabulary of {vocab_size} tokens",
                          f"pass --top-k {vocab_size} or less")


def _position_value(v) -> int:
    """One position of --expect: an integer (JSON 3 or "3"), never a bool or a fractional number."""
    if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
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


def _kept_positions(plan: CapturePlan, n_tokens: int, predict: int) -> list[int]:
    if plan.positions is None:
        return list(range(n_tokens))
    kept = {resolve_position(p, n_tokens) for p in plan.positions} | {predict}
    return sorted(kept)
