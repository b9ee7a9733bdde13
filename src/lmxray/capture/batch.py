"""Batches of token ids: left padding, the pad token, and query positions resolved once for every caller."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lmxray.errors import LmxrayError


def pad_token_id(tokenizer) -> int:
    """The id written under left padding: the tokenizer's pad token, else its EOS, else 0 (it is always masked)."""
    for name in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, int):
            return value
    return 0


@dataclass
class Batch:
    """Left-padded token ids with the mask and position ids that make padding invisible."""

    ids: list[list[int]]  # the prompts' own ids, unpadded
    input_ids: torch.Tensor  # [batch, pos]
    attention_mask: torch.Tensor  # [batch, pos], 1 = real token
    position_ids: torch.Tensor  # [batch, pos], 0 at each prompt's first real token
    pads: list[int]  # left padding per prompt

    @classmethod
    def from_ids(cls, ids: list[list[int]], pad_id: int, device) -> "Batch":
        if not ids or any(len(x) == 0 for x in ids):
            raise LmxrayError("a prompt has no tokens", "pass non-empty prompts")
        width = max(len(x) for x in ids)
        pads = [width - len(x) for x in ids]
        input_ids = torch.tensor([[pad_id] * p + list(x) for p, x in zip(pads, ids)], device=device)
        mask = torch.tensor([[0] * p + [1] * len(x) for p, x in zip(pads, ids)], device=device)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        return cls([list(x) for x in ids], input_ids, mask, position_ids, pads)

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.ids]


def resolve_position(position: int, n_tokens: int, what: str = "position") -> int:
    """A position as a non-negative index (negative counts from the end), or a clear error."""
    params = ("position",) if what == "position" else ()
    if isinstance(position, bool) or not isinstance(position, int):
        raise LmxrayError(f"{what} must be an integer, got {position!r}", "pass e.g. -1 for the last token",
                          params=params)
    p = position + n_tokens if position < 0 else position
    if not 0 <= p < n_tokens:
        raise LmxrayError(f"{what} {position} is out of range for a prompt of {n_tokens} tokens",
                          f"use 0..{n_tokens - 1} or -1..-{n_tokens}", params=params)
    return p


def resolve_rows(rows, lengths: list[int]) -> list[list[int]] | None:
    """Kept query positions per prompt as sorted non-negative indices; None when every prompt keeps all its rows.

    ``rows`` is ``"all"``, ``"last"``, a list of positions for every prompt (negative count from
    the end), or one such list per prompt.
    """
    if rows == "all":
        return None
    if rows == "last":
        return [[n - 1] for n in lengths]
    out = resolve_positions(rows, lengths)
    return None if all(len(k) == n for k, n in zip(out, lengths)) else out


def resolve_positions(positions, lengths: list[int]) -> list[list[int]]:
    """One list of positions for every prompt, or one list per prompt, as sorted non-negative indices per prompt."""
    per_prompt = positions if positions and isinstance(positions[0], (list, tuple)) else [positions] * len(lengths)
    if len(per_prompt) != len(lengths):
        raise LmxrayError(f"{len(per_prompt)} position lists for {len(lengths)} prompts", "pass one list per prompt")
    return [sorted({resolve_position(int(p), n) for p in kept}) for kept, n in zip(per_prompt, lengths)]
