"""``--expect-tokens``: expected key positions named by prompt text, resolved through the model's tokenizer.

Syntax: comma-separated items (whitespace around each is trimmed; ``\\,`` is a
literal comma). An item is a piece of the prompt text, matched on word
boundaries; every token whose characters overlap it is expected (so a word the
tokenizer splits counts whole, and a BOS token never matches text). ``WORD#N``
takes only the N-th occurrence (1-based); ``<first>`` is position 0 (the BOS
token where the tokenizer adds one, else the first token).
"""

from __future__ import annotations

import re

from lmxray.errors import LmxrayError

FIRST = "<first>"
_EXAMPLE = '--expect-tokens "<first>, capital, Myanmar"'


def parse_items(text: str) -> list[tuple[str, int | None]]:
    """``"<first>, Paris#2, is"`` -> ``[("<first>", None), ("Paris", 2), ("is", None)]``."""
    if not text or not text.strip():
        raise LmxrayError("--expect-tokens is empty", f"name words of the prompt, e.g. {_EXAMPLE}")
    items = []
    for raw in re.split(r"(?<!\\),", text):
        item = raw.strip().replace("\\,", ",")
        if not item:
            raise LmxrayError(f"--expect-tokens {text!r} has an empty item", f"write it like {_EXAMPLE}")
        match = re.fullmatch(r"(.+?)#(\d+)", item, flags=re.S)
        if match and item != FIRST:
            word, n = match.group(1).strip(), int(match.group(2))
            if n < 1:
                raise LmxrayError(f"--expect-tokens item {item!r}: occurrences count from 1", f"write e.g. {word}#1")
            items.append((word, n))
        else:
            items.append((item, None))
    return items


def token_spans(tokenizer, prompt: str, ids: list[int], texts: list[str]) -> list[tuple[int, int] | None]:
    """Character span ``[start, end)`` of each token in ``prompt`` (None for special tokens such as BOS).

    Uses the tokenizer's offsets when it has them and they belong to ``ids``; otherwise
    walks the tokens' decoded texts along the prompt.
    """
    try:
        enc = tokenizer(prompt, add_special_tokens=True, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        if list(enc["input_ids"]) == list(ids) and len(offsets) == len(ids):
            special = set(getattr(tokenizer, "all_special_ids", []) or [])
            return [None if (a, b) == (0, 0) or i in special else (int(a), int(b))
                    for i, (a, b) in zip(ids, offsets)]
    except (TypeError, ValueError, KeyError, NotImplementedError):
        pass
    spans, cursor = [], 0
    for text in texts:
        if text and prompt.startswith(text, cursor):
            spans.append((cursor, cursor + len(text)))
            cursor += len(text)
        else:
            spans.append(None)
    return spans


def _occurrences(prompt: str, word: str) -> list[tuple[int, int]]:
    """Character spans of ``word`` in ``prompt``, on word boundaries where the word starts or ends with a letter."""
    left = r"(?<!\w)" if re.match(r"\w", word) else ""
    right = r"(?!\w)" if re.search(r"\w$", word) else ""
    return [(m.start(), m.end()) for m in re.finditer(left + re.escape(word) + right, prompt)]


def _stripped(prompt: str, span: tuple[int, int]) -> tuple[int, int]:
    """A token's span without its leading and trailing whitespace (a space belongs to no word)."""
    a, b = span
    while a < b and prompt[a].isspace():
        a += 1
    while b > a and prompt[b - 1].isspace():
        b -= 1
    return a, b


def resolve_items(items: list[tuple[str, int | None]], prompt: str, spans: list[tuple[int, int] | None],
                  position: int) -> list[int]:
    """Expected key positions (sorted) for ``items``; each must name text at or before ``position``."""
    found: set[int] = set()
    for word, nth in items:
        if word == FIRST:
            found.add(0)
            continue
        hits = _occurrences(prompt, word)
        label = word if nth is None else f"{word}#{nth}"
        if not hits:
            raise LmxrayError(f"--expect-tokens item {word!r} is not in the prompt {prompt[:60]!r}",
                              f"name words of the prompt (case and spelling as written), e.g. {_EXAMPLE}")
        if nth is not None:
            if nth > len(hits):
                raise LmxrayError(f"--expect-tokens item {label!r}: {word!r} occurs {len(hits)} time(s) in the prompt",
                                  f"pick an occurrence from 1 to {len(hits)}")
            hits = [hits[nth - 1]]
        positions = set()
        for a, b in hits:
            for pos, span in enumerate(spans):
                if span is None:
                    continue
                s, e = _stripped(prompt, span)
                if s < b and e > a:
                    positions.add(pos)
        if not positions:
            raise LmxrayError(f"--expect-tokens item {label!r} covers no token of the prompt",
                              "name whole words of the prompt")
        if min(positions) > position:
            raise LmxrayError(f"--expect-tokens item {label!r} lies after the prediction position {position}",
                              "name text before the prediction position, or move it with --position")
        found |= {p for p in positions if p <= position}
    return sorted(found)


def expect_from_tokens(model, prompt: str, text: str, position: int) -> dict[int, list[int]]:
    """``{prediction position: key positions}`` for ``--expect-tokens TEXT`` on ``model``'s tokenization of ``prompt``."""
    from lmxray.capture import resolve_position

    items = parse_items(text)
    ids = model.encode(prompt)
    p = resolve_position(position, len(ids))
    spans = token_spans(model.tokenizer, prompt, ids, model.token_texts(ids))
    return {p: resolve_items(items, prompt, spans, p)}


def merge_expected(expect: dict, extra: dict[int, list[int]], n_tokens: int) -> dict:
    """``--expect`` JSON (query -> keys, possibly negative) joined with resolved ``--expect-tokens`` (union)."""
    from lmxray.models.model import resolve_expected

    merged = resolve_expected(expect, n_tokens)
    for q, keys in extra.items():
        merged[q] = sorted(set(merged.get(q, [])) | set(keys))
    return {str(q): keys for q, keys in merged.items()}
