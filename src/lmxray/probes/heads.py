"""Run the head-pattern probe set through a model (and its baselines) and score every head.

The probe set is a few natural prompts plus repeated random token sequences
(a random block of n distinct tokens, then the same block again): see docs/heads.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from lmxray.analysis.heads import HeadScores, Probe, score_heads, with_baseline
from lmxray.capture import CapturePlan, capture
from lmxray.capture.budget import CaptureTooBig, free_bytes
from lmxray.errors import LmxrayError

NATURAL_PROMPTS = (
    "The cat sat on the mat because it was warm and the sun was shining through the window.",
    "In 1969, astronauts landed on the Moon, and millions of people watched the broadcast at home.",
    "She opened the old book, read the first page twice, and then closed it again without a word.",
)
REPEAT_LEN = 20  # random tokens per block; the induction offset (REPEAT_LEN - 1) stays far above MAX_SKIP
N_REPEATS = 2  # repeated random sequences in the default probe set


@dataclass
class ProbeInput:
    """Token ids of one probe; ``repeat`` is the repeated block length (0 for a natural prompt)."""

    name: str
    ids: list[int]
    repeat: int = 0


def check_probe_memory(model, n_repeats: int, n_layers: int, repeat_len: int = REPEAT_LEN) -> None:
    """Refuse, before the probes are built, a repeat count whose per-head maps alone could not fit in free memory."""
    seq = 2 * repeat_len + 1  # [BOS] + block + block: a lower bound on the padded batch length
    need = n_repeats * n_layers * model.info.n_heads * seq * seq * 4  # fp32 maps
    host, gpu = free_bytes(model.device)
    free = gpu if gpu is not None else host
    if free is not None and need > free:
        raise CaptureTooBig(f"the probe set of --repeats {n_repeats} needs about {need / 2**30:.3g} GiB or more for "
                            f"its attention maps, more than the {free / 2**30:.3g} GiB free",
                            "score fewer probes (--repeats) or fewer layers (--layers)")


def probe_set(model, n_repeats: int = N_REPEATS, repeat_len: int = REPEAT_LEN, seed: int = 0,
              prompts: Iterable[str] = NATURAL_PROMPTS) -> list[ProbeInput]:
    """Natural prompts (cut to the context) plus ``n_repeats`` sequences [BOS] + block + block of distinct
    random non-special tokens."""
    if repeat_len < 2 or n_repeats < 1:
        raise LmxrayError("the probe set needs at least one repeated block of 2 or more tokens",
                          "pass n_repeats >= 1 and repeat_len >= 2")
    check_probe_memory(model, n_repeats, 1, repeat_len)  # one layer: a lower bound on any use of the set
    limit = model.max_positions
    probes = [ProbeInput(f"prompt {i}", _encode_within(model, p, limit)) for i, p in enumerate(prompts)]
    bos = model.encode("a")[:1] if _adds_bos(model) else []
    tok = model.tokenizer
    special = set(getattr(tok, "all_special_ids", None) or []) | {
        getattr(tok, f"{name}_token_id", None) for name in ("pad", "bos", "eos")}
    pool = np.array([i for i in range(model.info.vocab_size) if i not in special])
    if pool.size < repeat_len:
        raise LmxrayError(f"the vocabulary has only {pool.size} ordinary tokens", f"use repeat_len <= {pool.size}")
    rng = np.random.default_rng(seed)
    for r in range(n_repeats):
        block = rng.choice(pool, size=repeat_len, replace=False).tolist()
        probes.append(ProbeInput(f"repeat {r}", bos + block + block, repeat_len))
    if limit and len(probes[-1].ids) > limit:
        raise LmxrayError(f"a repeated probe is {len(probes[-1].ids)} tokens, longer than the model's context of {limit}",
                          "use a shorter repeat length")
    return probes


@torch.no_grad()
def capture_probes(model, probes: list[ProbeInput], layers: list[int] | None = None) -> tuple[list[Probe], list[int]]:
    """Per-head fp32 attention ``[layer, head, q, k]`` of each probe (one batched forward), and the model layers."""
    plan = CapturePlan(layers=None if layers is None else tuple(layers), attention=False, per_head=True,
                       row_stats=False, components=(), lens=False)
    try:
        captured = capture(model, [p.ids for p in probes], plan, rows="all", logits_at="last")
    except CaptureTooBig as e:  # the probe set is one batch: its size is what the user can change
        raise CaptureTooBig(e.problem, "score fewer probes (--repeats) or fewer layers (--layers)") from None
    out = []
    for b, probe in enumerate(probes):
        maps = captured.real(b, captured.attention_heads, 2, 3)  # [layer, head, q_pos, k_pos], a view
        out.append(Probe(maps.cpu().numpy(), probe.repeat, probe.name))
    return out, captured.layers


def model_head_scores(model, probes: list[ProbeInput], layers: list[int] | None = None) -> HeadScores:
    """Score every head of ``model`` (or of the chosen layers) on the probe set."""
    maps, kept = capture_probes(model, probes, layers)
    return score_heads(maps, model.info.name, kept)


def head_scores_vs_baseline(model, baselines: Iterable, baseline_name: str, probes: list[ProbeInput],
                            layers: list[int] | None = None) -> tuple[HeadScores, list[HeadScores]]:
    """Scores of ``model`` with z-scores against ``baselines`` (models, consumed one at a time so memory stays flat)."""
    scores = model_head_scores(model, probes, layers)
    base = []
    for other in baselines:
        _check_same_tokenizer(model, other)
        base.append(model_head_scores(other, probes, layers))
    return with_baseline(scores, base, baseline_name), base


def random_twins(model_or_spec, seeds: Iterable[int], device: str = "auto", dtype: str = "auto"):
    """Yield the random-init twins (probes.twins.random_twin) of a spec or loaded model, one seed at a time."""
    from lmxray.probes.twins import random_twin

    for seed in seeds:
        yield random_twin(model_or_spec, seed, device=device, dtype=dtype)


def checkpoint_models(specs: Iterable[str], device: str = "auto", dtype: str = "auto"):
    """Yield the pretrained models named by ``specs`` (another checkpoint as baseline, or a checkpoint series)."""
    from lmxray.models.loader import load

    for spec in specs:
        yield load(spec, device=device, dtype=dtype)


def _encode_within(model, prompt: str, limit: int | None) -> list[int]:
    """A natural prompt's ids, cut to the model's context (tiny test models have short ones)."""
    ids = model.tokenizer(prompt, add_special_tokens=True)["input_ids"]
    return list(ids[:limit] if limit else ids)


def _adds_bos(model) -> bool:
    bos = getattr(model.tokenizer, "bos_token_id", None)
    return bos is not None and model.encode("a")[0] == bos


def _check_same_tokenizer(model, other) -> None:
    text = NATURAL_PROMPTS[0]
    if other.info.vocab_size != model.info.vocab_size or _encode_within(other, text, None) != _encode_within(model, text, None):
        raise LmxrayError(f"the baseline {other.info.name} does not share {model.info.name}'s tokenizer",
                          "use a baseline checkpoint of the same model")
