"""Generation logit trace: per step, the top-k candidates with probabilities and raw logits, entropy and a flag.

Every step runs the full prefix through the model with no KV cache, so each
step's distribution is exactly the untraced forward on that prefix. Greedy by
default; with ``temperature > 0`` the next token is sampled from
softmax(logits / temperature) with a seeded generator (reproducible).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from lmxray.errors import LmxrayError

CONFIDENT = 0.7  # top-1 probability above this: "confident"
NO_IDEA = 0.1  # top-1 probability below this: "no idea"; in between: "uncertain"


@dataclass
class Candidate:
    token_id: int
    text: str  # decoded, no BPE markers
    prob: float  # softmax of the raw logits (temperature 1)
    logit: float  # raw logit


@dataclass
class Step:
    """One generation step: the prefix the model saw and what it made of it."""

    step: int
    prefix: str  # decoded prompt + tokens chosen so far
    candidates: list[Candidate]  # best first
    entropy: float  # nats, of the model's full distribution (temperature 1)
    flag: str  # "confident", "uncertain" or "no idea", from the top-1 probability
    chosen_id: int
    chosen_text: str
    chosen_prob: float  # the chosen token's probability at temperature 1


@dataclass
class LogitTrace:
    model: str
    prompt: str
    temperature: float  # 0 = greedy
    seed: int | None  # the sampling seed (None when greedy)
    steps: list[Step]
    generated: str  # decoded text of the chosen tokens
    stopped: str  # "steps" or "eos"

    def to_dict(self) -> dict:
        return asdict(self)


def confidence_flag(top1: float) -> str:
    """confident (top-1 > CONFIDENT), no idea (top-1 < NO_IDEA), else uncertain."""
    if top1 > CONFIDENT:
        return "confident"
    return "no idea" if top1 < NO_IDEA else "uncertain"


def check_generation_args(steps: int, top_k: int, temperature: float) -> None:
    """Refuse impossible settings before any model work."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
        raise LmxrayError(f"steps must be an integer of at least 1, got {steps!r}", "pass e.g. steps 8",
                          params=("steps",))
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise LmxrayError(f"top_k must be an integer of at least 1, got {top_k!r}", "pass e.g. top_k 5",
                          params=("top_k",))
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0 \
            or math.isinf(temperature):
        raise LmxrayError(f"temperature must be a finite number >= 0, got {temperature!r}",
                          "use 0 for greedy decoding or e.g. 0.8 to sample", params=("temperature",))


@torch.no_grad()
def logit_trace(model, prompt: str, steps: int = 8, top_k: int = 5, temperature: float = 0.0, seed: int = 0,
                stop_at_eos: bool = True) -> LogitTrace:
    """Generate ``steps`` tokens from ``prompt``, recording every step's top-k distribution."""
    check_generation_args(steps, top_k, temperature)
    ids = model.encode(prompt)
    limit = model.max_positions
    if limit and len(ids) + steps - 1 > limit:
        raise LmxrayError(f"{len(ids)} prompt tokens + {steps} steps exceed the model's context of {limit}",
                          "use fewer steps or a shorter prompt", params=("steps",))
    k = min(top_k, model.info.vocab_size)
    generator = torch.Generator(device=model.device).manual_seed(seed) if temperature > 0 else None
    eos = getattr(model.tokenizer, "eos_token_id", None)
    n_prompt, records, stopped = len(ids), [], "steps"
    for step in range(steps):
        logits = model.hf(input_ids=torch.tensor([ids], device=model.device), use_cache=False).logits[0, -1].float()
        logp = torch.log_softmax(logits, dim=-1)
        top_logp, top_ids = logp.topk(k)
        chosen = int(top_ids[0]) if generator is None else _sample(logits, temperature, generator)
        candidates = [Candidate(int(i), model.token_text(int(i)), float(lp.exp()), float(logits[i]))
                      for lp, i in zip(top_logp, top_ids)]
        records.append(Step(
            step=step, prefix=_decode(model, ids), candidates=candidates,
            entropy=float(-(logp.exp() * logp).nan_to_num().sum()), flag=confidence_flag(candidates[0].prob),
            chosen_id=chosen, chosen_text=model.token_text(chosen), chosen_prob=float(logp[chosen].exp()),
        ))
        ids.append(chosen)
        if stop_at_eos and eos is not None and chosen == eos:
            stopped = "eos"
            break
    return LogitTrace(model=model.info.name, prompt=prompt, temperature=temperature,
                      seed=seed if temperature > 0 else None, steps=records,
                      generated=_decode(model, ids[n_prompt:]), stopped=stopped)


def _sample(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> int:
    # shifted so the largest is 0: a tiny temperature gives a one-hot distribution, not inf / inf = nan
    probs = torch.softmax((logits.double() - logits.max()) / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def _decode(model, ids: list[int]) -> str:
    return model.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
