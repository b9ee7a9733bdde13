"""The sweep runner: trace prompt pairs in batches with a lean capture plan and store per-layer rows.

Each batch holds both prompts of several pairs; only the prediction position's
head-summed attention row is captured (no components, no lens), so a batch
costs little above the plain forward pass. Rows are stored per finished batch
in a RunStore, so a killed sweep resumes where it stopped; the batches run on
an engine (this process, or Ray workers) that calls the same SweepJob.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
import torch

from lmxray.analysis.divergence import (ALIGNMENTS, DEFAULT_ALIGNMENT, DEFAULT_JS_THRESHOLD, align,
                                        differing_spans, first_share, js_divergence, normalise)
from lmxray.capture import CapturePlan, capture
from lmxray.engines import Engine, Item, LocalEngine, Output, identity, run_job
from lmxray.errors import LmxrayError
from lmxray.experiments.datasets import Pair
from lmxray.experiments.store import RunStore

COMMAND = "sweep"
# Layout of the stored rows; a run folder of another layout is refused (store.py). 2: token alignment,
# length_matched, n_shared_tokens and the differing spans; 3: the pair's full intended and contradictory prompts.
ROWS_SCHEMA = 3
# Only the prediction position's head-summed attention row: no per-head maps, row entropy, vectors or lens.
SWEEP_PLAN = CapturePlan(positions=(-1,), attention=True, per_head=False, row_stats=False, components=(),
                         n_values=0, lens=False)


@dataclass(frozen=True)
class SweepConfig:
    """Sweep options; ``align`` shapes the stored rows, the others only how they are computed or summarised."""

    batch_size: int = 16  # pairs per forward pass (two prompts each)
    align: str = DEFAULT_ALIGNMENT  # "tokens": shared tokens matched, differing spans as units; "start"; "end"
    threshold: float = DEFAULT_JS_THRESHOLD  # JS above this marks the first divergence layer
    limit: int | None = None  # only the first N pairs of the dataset

    def __post_init__(self):
        if self.batch_size < 1:
            raise LmxrayError(f"batch size must be at least 1, got {self.batch_size}", "pass --batch-size 1 or more")
        if self.align not in ALIGNMENTS:
            raise LmxrayError(f"unknown alignment '{self.align}'", f"use --align {' or --align '.join(ALIGNMENTS)}")
        if not 0.0 <= self.threshold <= 1.0:
            raise LmxrayError(f"threshold must lie in [0, 1], got {self.threshold}", "pass e.g. --threshold 0.05")
        if self.limit is not None and self.limit < 1:
            raise LmxrayError(f"limit must be at least 1, got {self.limit}", "pass --limit 1 or more")

    def stored_settings(self) -> dict:
        """The settings a run folder must keep to stay consistent across resumes."""
        return {"align": self.align}


def sweep_store(folder, model_spec: str, config: SweepConfig) -> RunStore:
    """The run folder of a sweep, tied to its model, its alignment and the layout of its rows."""
    return RunStore(folder, COMMAND, model_spec, config.stored_settings(), schema=ROWS_SCHEMA)


def run_sweep(model, pairs: list[Pair], store: RunStore, config: SweepConfig, fresh: bool = False,
              progress: Callable[[int, int], None] | None = None, engine: Engine | None = None) -> dict:
    """Trace every pending pair on ``engine`` (default: this process), one part per batch; returns counts and timing.

    ``model`` is the engine's ``driver_model()``: the loaded model, or for Ray its weightless card.
    """
    pairs = pairs[: config.limit] if config.limit else pairs
    items = []  # every pair checked before the run folder is touched; a bad one is named
    for p in pairs:
        try:
            ids = (model.encode(p.intended), model.encode(p.contradictory))
        except LmxrayError as e:
            raise LmxrayError(f"pair '{p.id}': {e.problem}", e.fix) from None
        _check_positions(p, len(ids[0]))
        items.append(Item(p.id, max(len(x) for x in ids), (p, ids)))
    store.begin(identity(model), fresh=fresh)
    stats = run_job(engine or LocalEngine(), SweepJob(config.align), model, items, store, config.batch_size, progress)
    return {"pairs": stats.pop("items"), **stats}


@dataclass(frozen=True)
class SweepJob:
    """A sweep's per-batch work for any engine: items hold (pair, (intended ids, contradictory ids))."""

    align: str

    def launch(self, model, items: list[Item]) -> "LaunchedBatch":
        return launch_batch(model, [it.data[0] for it in items], [it.data[1] for it in items])

    def collect(self, model, launched: "LaunchedBatch") -> Output:
        return Output(collect_batch(model, launched, self.align))


@dataclass
class LaunchedBatch:
    """A batch whose forward pass is queued: its results are copied to the host as they become ready."""

    pairs: list[Pair]
    ids: list[list[int]]  # intended, contradictory, intended, ... (token ids)
    pads: np.ndarray  # left padding per prompt
    attention: torch.Tensor  # [prompt, layer, k_pos] head-summed prediction row, left-padded (host)
    top_prob: torch.Tensor  # [prompt] (host)
    top_id: torch.Tensor  # [prompt] (host)
    ready: torch.cuda.Event | None  # set once the copies have landed (None: already on the host)


@torch.no_grad()
def launch_batch(model, pairs: list[Pair], ids: list[tuple[list[int], list[int]]]) -> LaunchedBatch:
    """Queue one forward pass over both prompts of each pair and the copies of what the metrics need."""
    flat = [x for pair_ids in ids for x in pair_ids]  # intended, contradictory, intended, ...
    # left padding puts every prediction position last: only that row is unembedded
    captured = capture(model, flat, SWEEP_PLAN, rows="last", logits_at="last")
    top_prob, top_id = torch.softmax(captured.logits[:, -1].float(), dim=-1).max(dim=-1)
    # non_blocking device-to-host copies land in pinned memory; the event says when they are done
    rows = captured.attention[:, :, 0].transpose(0, 1)  # [prompt, layer, k_pos]
    host = [t.to("cpu", non_blocking=True) for t in (rows, top_prob, top_id)]
    ready = None
    if captured.batch.input_ids.device.type == "cuda":
        ready = torch.cuda.Event()
        ready.record()
    return LaunchedBatch(pairs, flat, np.array(captured.batch.pads), *host, ready)


def collect_batch(model, launched: LaunchedBatch, how: str) -> pa.Table:
    """The metrics of a launched batch, for all pairs and layers at once: rows of one pair x layer each."""
    if launched.ready is not None:
        launched.ready.synchronize()
    rows = normalise(launched.attention.double().numpy())  # [prompt, layer, k_pos]; padding holds no mass
    width = rows.shape[-1]
    shift = np.arange(width)[None, :] + launched.pads[:, None]  # start alignment: real position 0 at index 0
    started = np.take_along_axis(rows, np.minimum(shift, width - 1)[:, None, :], axis=-1)
    started *= (shift < width)[:, None, :]
    pairs, flat = launched.pairs, launched.ids
    if how == "tokens":
        # each prompt's real positions, summed over the units its token ids align to (one pair at a time)
        js = np.stack([js_divergence(*align(started[2 * n][:, :len(flat[2 * n])],
                                            started[2 * n + 1][:, :len(flat[2 * n + 1])], "tokens",
                                            (flat[2 * n], flat[2 * n + 1]))) for n in range(len(pairs))])
    else:  # left padding already lines up the prediction positions
        aligned = started if how == "start" else rows
        js = js_divergence(aligned[0::2], aligned[1::2])  # [pair, layer]
    bos = first_share(started)  # [prompt, layer]
    n_layers = js.shape[1]
    top_prob, top_id = launched.top_prob.numpy(), launched.top_id.numpy()
    texts = [model.token_text(int(t)) for t in top_id]
    per_pair = {name: [] for name in PAIR_FIELDS}
    expected_share = []
    for n, pair in enumerate(pairs):
        a, b = 2 * n, 2 * n + 1
        spans = differing_spans(flat[a], flat[b])
        values = {
            "id": pair.id, "category": pair.category, "intended": pair.intended, "contradictory": pair.contradictory,
            "n_tokens_intended": len(flat[a]), "n_tokens_contradictory": len(flat[b]),
            "length_matched": len(flat[a]) == len(flat[b]),
            "n_shared_tokens": len(flat[a]) - sum(len(x) for x, _ in spans),
            "differs_intended": SPAN_SEPARATOR.join(model.tokenizer.decode(x) for x, _ in spans),
            "differs_contradictory": SPAN_SEPARATOR.join(model.tokenizer.decode(y) for _, y in spans),
            "top1_intended": texts[a], "prob_intended": float(top_prob[a]),
            "top1_contradictory": texts[b], "prob_contradictory": float(top_prob[b]),
            "expected": pair.expected,
            "hit_intended": produced(model, pair.intended, flat[a], int(top_id[a]), pair.expected),
            "hit_contradictory": produced(model, pair.contradictory, flat[b], int(top_id[b]), pair.expected),
        }
        for name in PAIR_FIELDS:
            per_pair[name].append(values[name])
        share = expected_position_share(started[a][:, :len(flat[a])], pair.expected_positions)
        expected_share.append([None] * n_layers if share is None else share.tolist())
    columns = {name: np.repeat(np.array(values, dtype=object), n_layers) for name, values in per_pair.items()}
    columns |= {"layer": np.tile(np.arange(n_layers, dtype=np.int32), len(pairs)), "js": js.ravel(),
                "bos_share_intended": bos[0::2].ravel(), "bos_share_contradictory": bos[1::2].ravel(),
                "expected_share_intended": [x for share in expected_share for x in share]}
    return pa.table({name: pa.array(columns[name], type=ROW_SCHEMA.field(name).type) for name in ROW_FIELDS},
                    schema=ROW_SCHEMA)


def sweep_batch(model, pairs: list[Pair], ids: list[tuple[list[int], list[int]]], how: str) -> pa.Table:
    """One batch, launched and collected at once: rows of one pair x layer each."""
    return collect_batch(model, launch_batch(model, pairs, ids), how)


def _check_positions(pair: Pair, n_tokens: int) -> None:
    bad = [q for q in pair.expected_positions or () if not -n_tokens <= q < n_tokens]
    if bad:
        raise LmxrayError(f"pair '{pair.id}': expected_positions {bad} are out of range for its "
                          f"{n_tokens}-token intended prompt", f"use 0..{n_tokens - 1} or -1..-{n_tokens}")


def produced(model, prompt: str, prompt_ids: list[int], top1: int, expected: str | None) -> bool | None:
    """Whether the top-1 token is the first token of the expected answer.

    That token is read from the tokenization of ``prompt + " " + expected`` (no
    space when either side already has one); when the prompt's tokens do not
    survive that join, the top-1 text, stripped, must be a non-empty prefix of
    the stripped answer instead.
    """
    if expected is None:
        return None
    joiner = "" if prompt[-1:].isspace() or expected[:1].isspace() else " "
    joined = model.tokenizer(prompt + joiner + expected, add_special_tokens=True)["input_ids"]
    if len(joined) > len(prompt_ids) and list(joined[:len(prompt_ids)]) == list(prompt_ids):
        return top1 == joined[len(prompt_ids)]
    token = model.token_text(top1).strip()
    return bool(token) and expected.strip().startswith(token)


def expected_position_share(rows: np.ndarray, positions: tuple[int, ...] | None) -> np.ndarray | None:
    """Per layer, the normalised row's mass on the expected key positions (negative count from the end)."""
    if positions is None:
        return None
    n = rows.shape[-1]
    keep = sorted({p + n if p < 0 else p for p in positions})
    return rows[:, keep].sum(-1)


ROW_SCHEMA = pa.schema([
    ("id", pa.string()), ("category", pa.string()), ("layer", pa.int32()), ("js", pa.float64()),
    ("bos_share_intended", pa.float64()), ("bos_share_contradictory", pa.float64()),
    ("expected_share_intended", pa.float64()),
    ("n_tokens_intended", pa.int32()), ("n_tokens_contradictory", pa.int32()), ("length_matched", pa.bool_()),
    ("n_shared_tokens", pa.int32()), ("differs_intended", pa.string()), ("differs_contradictory", pa.string()),
    ("top1_intended", pa.string()), ("prob_intended", pa.float64()),
    ("top1_contradictory", pa.string()), ("prob_contradictory", pa.float64()),
    ("expected", pa.string()), ("hit_intended", pa.bool_()), ("hit_contradictory", pa.bool_()),
    ("intended", pa.string()), ("contradictory", pa.string()),  # the traced prompts, so a pair can be traced again
])
ROW_FIELDS = ROW_SCHEMA.names
SPAN_SEPARATOR = " … "  # between the differing spans of one prompt in differs_intended/differs_contradictory
PAIR_FIELDS = [name for name in ROW_FIELDS if name not in
               ("layer", "js", "bos_share_intended", "bos_share_contradictory", "expected_share_intended")]
