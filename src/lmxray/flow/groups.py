"""Source groups: consecutive token ranges ``[a, b)`` that cover the prompt (words, or ranges the user names)."""

from __future__ import annotations

import re

from lmxray.errors import LmxrayError

_ITEM = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?$")
_FIX = 'write groups as inclusive token ranges, e.g. --group "0-2,3,4-6", or --group words'


def word_groups(tokens: list[str]) -> list[tuple[int, int]]:
    """Tokens joined into words: a word starts at leading whitespace, or where letters/digits meet other characters.

    A token of whitespace only joins the word after it.
    """
    groups, start = [], 0
    for i in range(1, len(tokens)):
        prev, tok = tokens[i - 1], tokens[i]
        if prev.isspace():
            continue
        if not tok or not prev or tok[0].isspace() or tok[0].isalnum() != prev[-1].isalnum():
            groups.append((start, i))
            start = i
    if tokens:
        groups.append((start, len(tokens)))
    return groups


def parse_groups(text: str, n_tokens: int) -> list[tuple[int, int]]:
    """``"0-2,5"`` -> groups covering every token (tokens not named stay alone); ranges are inclusive."""
    named: list[tuple[int, int]] = []
    for item in text.split(","):
        match = _ITEM.match(item)
        if not match:
            what = "an empty group" if not item.strip() else f"group {item.strip()!r} is not a token range"
            raise LmxrayError(f"--group {text!r}: {what}", _FIX)
        a = _index(int(match.group(1)), n_tokens, text)
        b = a if match.group(2) is None else _index(int(match.group(2)), n_tokens, text)
        if b < a:
            raise LmxrayError(f"--group {text!r}: group {item.strip()!r} is empty (it ends before it starts)", _FIX)
        named.append((a, b + 1))
    named.sort()
    for (a1, b1), (a2, b2) in zip(named, named[1:]):
        if a2 < b1:
            raise LmxrayError(f"--group {text!r}: groups {a1}-{b1 - 1} and {a2}-{b2 - 1} overlap", _FIX)
    return cover(named, n_tokens)


def cover(named: list[tuple[int, int]], n_tokens: int) -> list[tuple[int, int]]:
    """Sorted, disjoint ranges completed with single-token groups so every token is in one group."""
    groups, at = [], 0
    for a, b in named:
        groups.extend((i, i + 1) for i in range(at, a))
        groups.append((a, b))
        at = b
    groups.extend((i, i + 1) for i in range(at, n_tokens))
    return groups


def _index(i: int, n_tokens: int, text: str) -> int:
    j = i + n_tokens if i < 0 else i
    if not 0 <= j < n_tokens:
        raise LmxrayError(f"--group {text!r}: token {i} is out of range for a prompt of {n_tokens} tokens",
                          f"use 0..{n_tokens - 1}")
    return j


def group_labels(tokens: list[str], groups: list[tuple[int, int]]) -> list[str]:
    """The text of each group (its tokens joined), then ``"<bias>"`` for the bias source."""
    return ["".join(tokens[a:b]) for a, b in groups] + ["<bias>"]
