"""CapturePlan: what a trace keeps, so memory stays bounded by what was asked for."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lmxray.errors import LmxrayError
from lmxray.trace.types import COMPONENTS

from lmxray.trace.fields import DEFAULT_THRESHOLD  # noqa: F401  (trace/ owns it; re-exported here)


@dataclass(frozen=True)
class CapturePlan:
    """Choices for one trace.

    Never holds ``layers x heads x T x T`` unless ``per_head`` is set: the
    head-summed map is accumulated inside the attention function.
    """

    layers: tuple[int, ...] | None = None  # model layers to capture; None = all
    positions: tuple[int, ...] | None = None  # query positions kept (negative count from the end); None = all
    attention: bool = True  # keep the head-summed map [layer, q_pos, k_pos]
    per_head: bool = False  # also keep per-head maps [layer, head, q_pos, k_pos]
    heads: tuple[int, ...] | None = None  # heads kept when per_head; None = all
    row_stats: bool = True  # entropy of every attention row [layer, head, q_pos]
    components: tuple[str, ...] = COMPONENTS  # which component summaries to keep
    n_values: int | None = 8  # first N floats kept per vector; None keeps the full vector
    lens: bool = True  # logit lens at every captured layer
    lens_positions: tuple[int, ...] | None = ()  # positions besides the prediction position; None = every position
    top_k: int = 5
    threshold: float = DEFAULT_THRESHOLD  # edges below this weight are not written to JSONL
    chunk_bytes: int = 256 * 2**20  # bound on one fp32 probability block [batch, head, rows, keys] (CPU: 2 MiB at most)
    frozen: bool = False  # also keep norm scales, MLP gates and the final norm (what lmxray.flow freezes)

    def __post_init__(self):
        for name in ("layers", "positions", "heads", "lens_positions", "components"):
            if isinstance(getattr(self, name), list):  # lists read naturally in Python; the plan stores tuples
                object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("layers", "positions", "heads", "lens_positions"):
            _check_indices(name, getattr(self, name))
        for name in ("attention", "per_head", "row_stats", "lens", "frozen"):
            if not isinstance(getattr(self, name), bool):
                raise LmxrayError(f"{name} must be True or False, got {getattr(self, name)!r}",
                                  f"pass {name}=True or {name}=False", params=(name,))
        if isinstance(self.components, str) or not isinstance(self.components, tuple):
            raise LmxrayError(f"components must be a tuple of names, got {self.components!r}",
                              f"pass e.g. components=('residual',); names: {', '.join(COMPONENTS)}")
        unknown = set(self.components) - set(COMPONENTS)
        if unknown:
            raise LmxrayError(f"unknown component(s) {sorted(map(str, unknown))} in the capture plan",
                              f"choose from {', '.join(COMPONENTS)}")
        if not _is_int(self.top_k) or self.top_k < 1:
            raise LmxrayError(f"top_k must be an integer of at least 1, got {self.top_k!r}", "pass top_k=1 or more",
                              params=("top_k",))
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) \
                or not 0.0 <= self.threshold <= 1.0:
            raise LmxrayError(f"threshold must lie in [0, 1], got {self.threshold!r}", "pass e.g. threshold=0.01",
                              params=("threshold",))
        if self.n_values is not None and (not _is_int(self.n_values) or self.n_values < 0):
            raise LmxrayError(f"n_values must be an integer >= 0 or None, got {self.n_values!r}",
                              "pass 0 to keep norms only, None for full vectors")
        if not _is_int(self.chunk_bytes) or self.chunk_bytes < 1:
            raise LmxrayError(f"chunk_bytes must be a positive integer, got {self.chunk_bytes!r}",
                              "leave the default (256 MiB) or pass e.g. chunk_bytes=2**24")

    @classmethod
    def from_dict(cls, data: dict) -> "CapturePlan":
        """Build a plan from a dict, refusing keys that are not plan fields."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise LmxrayError(
                f"unknown capture plan key(s) {sorted(unknown)}", f"valid keys: {', '.join(sorted(names))}"
            )
        tupled = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**tupled)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def resolve_layers(self, n_layers: int) -> list[int]:
        """The captured layers as sorted non-negative indices (negative count from the end)."""
        if self.layers is None:
            return list(range(n_layers))
        return sorted({_resolve_index(i, n_layers, "layer", f"the model has {n_layers} layers") for i in self.layers})

    def resolve_lens_positions(self, n_tokens: int, predict: int) -> list[int]:
        """Sorted positions whose logit lens is computed: the prediction position plus ``lens_positions``."""
        if self.lens_positions is None:
            return list(range(n_tokens))
        return sorted({predict} | {_resolve_index(p, n_tokens, "lens position", f"the prompt has {n_tokens} tokens") for p in self.lens_positions})

    def resolve_heads(self, n_heads: int) -> list[int]:
        if self.heads is None:
            return list(range(n_heads))
        return sorted({_resolve_index(i, n_heads, "head", f"the model has {n_heads} heads") for i in self.heads})


def _resolve_index(i: int, n: int, what: str, scope: str) -> int:
    j = i + n if i < 0 else i
    if not 0 <= j < n:
        raise LmxrayError(f"{what} {i} is out of range ({scope})", f"use 0..{n - 1} or -1..-{n}")
    return j


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_indices(name: str, value) -> None:
    """None, or a non-empty tuple of integers (an empty tuple would capture nothing, silently)."""
    if value is None or (name == "lens_positions" and value == ()):
        return
    if not isinstance(value, tuple) or not value or not all(_is_int(i) for i in value):
        raise LmxrayError(f"{name} must be None or a non-empty tuple of integers, got {value!r}",
                          f"pass e.g. {name}=(0, -1), or None for all", params=(name,))
