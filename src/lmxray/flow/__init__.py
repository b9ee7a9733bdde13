"""Information flow: the residual stream split exactly into per-source-token contributions, and direct logit attribution.

    from lmxray.flow import flow
    result = flow(model, "The capital of France is", groups="words")
    result.total.shape       # [layer, position, source]; source axis ends with "<bias>"
    result.logits[0].contributions.sum() == result.logits[0].logit   (to fp32 rounding)
"""

from __future__ import annotations

import numpy as np
import torch

from lmxray.errors import LmxrayError
from lmxray.flow.attribution import attribute_logits
from lmxray.flow.decompose import DEFAULT_BLOCK_ROWS, decompose
from lmxray.flow.frozen import freeze
from lmxray.flow.groups import group_labels, parse_groups, word_groups
from lmxray.flow.maps import Affine, affine_of, layer_maps, norm_of
from lmxray.flow.result import AXES, Contrast, Flow, LogitAttribution, read_flow
from lmxray.adapters import SUPPORTED_MODEL_TYPES, get_path

__all__ = ["AXES", "Contrast", "Flow", "LogitAttribution", "flow", "read_flow", "token_id_of"]


def token_id_of(model, text: str, option: str = "--token") -> int:
    """The id of ``text`` as one token, or a user error naming the tokens it splits into."""
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        parts = " + ".join(repr(model.token_text(i)) for i in ids) if ids else "no tokens"
        raise LmxrayError(f"{option} {text!r} is not a single token: it splits into {parts}",
                          "pass one token, e.g. the first piece with its leading space")
    return int(ids[0])


def resolve_groups(groups, tokens: list[str]) -> list[tuple[int, int]] | None:
    """``None`` (every token alone), ``"words"``, a range string like ``"0-2,5"``, or a list of ``(a, b)`` ranges."""
    if groups is None:
        return None
    if groups == "words":
        return word_groups(tokens)
    if isinstance(groups, str):
        return parse_groups(groups, len(tokens))
    return parse_groups(",".join(f"{a}-{b - 1}" for a, b in groups), len(tokens))


@torch.no_grad()
def flow(model, prompt: str, *, position: int = -1, tokens: tuple[str, ...] = (), versus: str | None = None,
         groups=None, block_rows: int = DEFAULT_BLOCK_ROWS, compute_dtype: torch.dtype = torch.float32) -> Flow:
    """Decompose ``prompt``'s residual stream into per-source contributions and attribute the final logits.

    ``tokens``: texts of extra single tokens to attribute (the predicted token always comes first);
    ``versus``: a token B whose logit is subtracted from the first of ``tokens`` (or the prediction), see
    ``Flow.contrast``; ``groups``: see ``resolve_groups``; ``compute_dtype``: the matmul dtype.
    """
    from lmxray.capture import resolve_position

    if model.spec.inspected:
        raise LmxrayError(f"flow has no linear maps for model type '{model.info.architecture}' (lmxray traces it by "
                          "inspection, which cannot tell how its layers compose)",
                          f"flow runs on: {', '.join(SUPPORTED_MODEL_TYPES)}")
    ids = model.encode(prompt)
    p = resolve_position(position, len(ids))
    extra = [token_id_of(model, t) for t in tokens]
    against = None if versus is None else token_id_of(model, versus, "--vs")
    if against is not None and extra and against == extra[0]:
        raise LmxrayError(f"--vs {versus!r} is the same token as --token {tokens[0]!r}", "contrast two different tokens")
    extra += [] if against is None else [against]
    texts = model.token_texts(ids)
    ranges = resolve_groups(groups, texts)
    frozen = freeze(model, prompt, p)
    dec = decompose(frozen, lambda i: layer_maps(model, i, compute_dtype), p, ranges, block_rows)
    ranges = ranges if ranges is not None else [(s, s + 1) for s in range(len(ids))]
    if against is not None and not tokens and against == frozen.trace.predicted_token:
        raise LmxrayError(f"--vs {versus!r} is the predicted token itself",
                          "name the token to contrast it with: --token A --vs B")
    targets = list(dict.fromkeys([frozen.trace.predicted_token] + extra))
    spec, config = model.spec, model.hf.config.get_text_config()
    unembed = affine_of(get_path(model.hf, spec.unembed))
    rows = torch.tensor(targets, device=unembed.weight.device)
    cap = getattr(config, spec.logit_softcap_attr, None) if spec.logit_softcap_attr else None
    factor = spec.logit_factor(config)  # a logit scale (Cohere) or divisor (Granite) is linear: folded into W_U
    head = Affine(unembed.weight[rows] * factor, None if unembed.bias is None else unembed.bias[rows] * factor)
    parts = attribute_logits(dec.final, frozen.final_scale[p], norm_of(get_path(model.hf, spec.final_norm), spec),
                             head, frozen.final_normed[p], cap)
    grouped = torch.stack([parts[:, a:b].sum(-1) for a, b in ranges] + [parts[:, -1]], dim=-1).cpu().numpy()
    true = frozen.logits[p, rows].cpu().numpy()
    as_np = lambda t: t.cpu().numpy()  # noqa: E731
    return Flow(
        model=model.info, prompt=prompt, token_ids=list(ids), tokens=texts, position=p,
        sources=group_labels(texts, ranges), groups=ranges,
        attention=as_np(dec.attention), mlp=as_np(dec.mlp), total=as_np(dec.total),
        error=as_np(dec.error).astype(np.float64),
        logits=[LogitAttribution(t, model.token_text(t), float(v), g.astype(np.float64))
                for t, v, g in zip(targets, true, grouped)],
        top_k=frozen.trace.top_k, trace=frozen.trace,
        versus=None if against is None else (extra[0] if tokens else frozen.trace.predicted_token, against),
    )
