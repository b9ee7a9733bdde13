"""The profile runner: per-layer residual-delta statistics of every sample of some corpora, resumable.

Each batch captures the residual entering layer 0 and every layer's output (full
vectors, nothing else), reduces them to three numbers per layer and sample, and
is stored as one part. Memory is bounded by ``batch_size x layers x max_tokens x d_model``.
The batches run on an engine (this process, or Ray workers) that calls the same ProfileJob.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
import torch

from lmxray.analysis.profile_stats import SAMPLE_STATS, sample_stats
from lmxray.capture import CapturePlan, capture
from lmxray.engines import Engine, Item, LocalEngine, Output, identity, run_job
from lmxray.errors import LmxrayError
from lmxray.experiments.datasets import Sample
from lmxray.experiments.store import RunStore

COMMAND = "profile"
DEFAULT_MAX_TOKENS = 512
PROFILE_PLAN = CapturePlan(components=("input_embedding", "residual"), n_values=None, attention=False,
                           per_head=False, row_stats=False, lens=False)


@dataclass(frozen=True)
class ProfileConfig:
    """Profile options; ``max_tokens`` shapes the stored rows."""

    batch_size: int = 8
    max_tokens: int = DEFAULT_MAX_TOKENS  # longer samples keep their first max_tokens tokens
    limit: int | None = None  # only the first N samples of each corpus

    def __post_init__(self):
        if self.batch_size < 1:
            raise LmxrayError(f"batch size must be at least 1, got {self.batch_size}", "pass --batch-size 1 or more")
        if self.max_tokens < 2:
            raise LmxrayError(f"max tokens must be at least 2, got {self.max_tokens}", "pass e.g. --max-tokens 512")
        if self.limit is not None and self.limit < 1:
            raise LmxrayError(f"limit must be at least 1, got {self.limit}", "pass --limit 1 or more")

    def stored_settings(self) -> dict:
        return {"max_tokens": self.max_tokens}


def profile_store(folder, model_spec: str, config: ProfileConfig) -> RunStore:
    return RunStore(folder, COMMAND, model_spec, config.stored_settings())


def sample_key(sample: Sample) -> str:
    """The stored id: the sample's name plus a hash of its text, so an edited sample is computed again."""
    return f"{sample.id}@{hashlib.sha256(sample.text.encode()).hexdigest()[:12]}"


def select(corpora: dict[str, list[Sample]], config: ProfileConfig) -> dict[str, list[Sample]]:
    """Each corpus cut to ``config.limit`` samples."""
    return {name: samples[: config.limit] if config.limit else samples for name, samples in corpora.items()}


def run_profile(model, corpora: dict[str, list[Sample]], store: RunStore, config: ProfileConfig,
                fresh: bool = False, progress: Callable[[int, int], None] | None = None,
                engine: Engine | None = None) -> dict:
    """Profile every pending sample on ``engine`` (default: this process), one part per batch; returns counts and
    timing. ``model`` is the engine's ``driver_model()``: the loaded model, or for Ray its weightless card."""
    limit = model.max_positions
    if limit and config.max_tokens > limit:
        raise LmxrayError(f"--max-tokens {config.max_tokens} exceeds the model's context of {limit}",
                          f"pass --max-tokens {limit} or less")
    store.begin(identity(model), fresh=fresh)
    done = store.done_ids()  # only the samples still to do are tokenised here
    items = []
    for name, samples in select(corpora, config).items():
        for s in samples:
            key = sample_key(s)
            ids = None if key in done else model.tokenizer(s.text, add_special_tokens=True)["input_ids"]
            items.append(Item(key, 0 if ids is None else min(len(ids), config.max_tokens), (name, s, ids)))
    stats = run_job(engine or LocalEngine(), ProfileJob(config.max_tokens), model, items, store, config.batch_size,
                    progress)
    return {"samples": stats.pop("items"), **stats}


@dataclass(frozen=True)
class ProfileJob:
    """A profile's per-batch work for any engine: items hold (corpus, sample, token ids)."""

    max_tokens: int

    def launch(self, model, items: list[Item]) -> Output:
        return Output(profile_batch(model, [(c, s) for c, s, _ in (it.data for it in items)],
                                    [ids for _, _, ids in (it.data for it in items)], self.max_tokens))

    def collect(self, model, launched: Output) -> Output:
        return launched


@torch.no_grad()
def profile_batch(model, samples: list[tuple[str, Sample]], ids: list[list[int]], max_tokens: int) -> pa.Table:
    """One forward pass; rows of one sample x layer with the delta's mean, mean |.| and relative size."""
    kept = [list(x[:max_tokens]) for x in ids]
    captured = capture(model, kept, PROFILE_PLAN, rows="last", logits_at="last")
    embedding = captured.summary("input_embedding")[1]  # [1, batch, pos, d_model]
    residual = captured.summary("residual")[1]  # [layer, batch, pos, d_model]
    columns: dict[str, list] = {name: [] for name in ROW_SCHEMA.names}
    for b, ((corpus, sample), full) in enumerate(zip(samples, ids)):
        stats = sample_stats(captured.real(b, embedding, 1, None)[0].cpu().numpy(),
                             captured.real(b, residual, 1, None).cpu().numpy())
        for layer in range(residual.shape[0]):
            row = {"id": sample_key(sample), "corpus": corpus, "sample": int(sample.id.rsplit(":", 1)[1]),
                   "source": sample.where, "layer": layer, "n_tokens": len(kept[b]), "n_tokens_original": len(full),
                   "truncated": len(full) > max_tokens, **{name: float(stats[name][layer]) for name in SAMPLE_STATS}}
            for name in ROW_SCHEMA.names:
                columns[name].append(row[name])
    return pa.table(columns, schema=ROW_SCHEMA)


ROW_SCHEMA = pa.schema([
    ("id", pa.string()), ("corpus", pa.string()), ("sample", pa.int32()), ("source", pa.string()),
    ("layer", pa.int32()), ("n_tokens", pa.int32()), ("n_tokens_original", pa.int32()), ("truncated", pa.bool_()),
    ("mean", pa.float64()), ("abs_mean", pa.float64()), ("rel_size", pa.float64()),
])
