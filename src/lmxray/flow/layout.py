"""Packing of the causal half of (position, source) pairs, source-major, and its blocks.

Source ``s < T`` (a prompt token) reaches positions ``s..T-1``; the bias source
(index ``T``) reaches every position. Source-major rows make each source's
positions one contiguous run, so attention mixing of a block of sources is one
batched matmul, and a layer is processed block by block in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Block:
    """Consecutive sources ``[first, stop)`` (whole groups) and their rows ``rows``."""

    first: int
    stop: int
    rows: slice
    start: int  # first position any source of the block reaches
    dense_index: torch.Tensor  # [rows]: (source - first) * (T - start) + (position - start)
    group_first: int  # first group of the block
    n_groups: int  # groups in the block
    group_index: torch.Tensor  # [rows]: (group - group_first) * T + position
    has_bias: bool  # the block is the bias source alone


@dataclass
class Layout:
    n_tokens: int  # T
    offset: list[int]  # first row of each source; offset[T + 1] = number of rows
    position: torch.Tensor  # [rows]: position of each row
    source: torch.Tensor  # [rows]: source of each row (T = bias)

    @property
    def n_sources(self) -> int:
        return self.n_tokens + 1

    @property
    def n_rows(self) -> int:
        return self.offset[-1]

    @classmethod
    def for_tokens(cls, n_tokens: int, device) -> "Layout":
        t = n_tokens
        starts = list(range(t)) + [0]
        lengths = [t - s for s in starts]
        offset = [0]
        for n in lengths:
            offset.append(offset[-1] + n)
        position = torch.cat([torch.arange(s, t, device=device) for s in starts])
        source = torch.repeat_interleave(torch.arange(t + 1, device=device), torch.tensor(lengths, device=device))
        return cls(t, offset, position, source)

    def start(self, source: int) -> int:
        return 0 if source == self.n_tokens else source

    def blocks(self, groups: list[tuple[int, int]], max_rows: int) -> list[Block]:
        """Blocks of whole groups (consecutive token ranges ``[a, b)`` covering ``0..T-1``), about ``max_rows`` rows each.

        The bias source is always a block (and a group) of its own, the last.
        """
        t, blocks, pending = self.n_tokens, [], []
        for gi, (a, b) in enumerate(groups):
            if pending and self.offset[b] - self.offset[groups[pending[0]][0]] > max_rows:
                blocks.append(self._block_of(groups, pending))
                pending = []
            pending.append(gi)
        if pending:
            blocks.append(self._block_of(groups, pending))
        blocks.append(self._block_of(groups + [(t, t + 1)], [len(groups)]))
        return blocks

    def _block_of(self, groups: list[tuple[int, int]], ids: list[int]) -> Block:
        t = self.n_tokens
        first, stop = groups[ids[0]][0], groups[ids[-1]][1]
        rows = slice(self.offset[first], self.offset[stop])
        start = self.start(first)
        pos, src = self.position[rows], self.source[rows]
        group = torch.empty_like(src)
        for i, gi in enumerate(ids):
            a, b = groups[gi]
            group[(src >= a) & (src < b)] = i
        return Block(first, stop, rows, start, (src - first) * (t - start) + (pos - start),
                     ids[0], len(ids), group * t + pos, first == t)
