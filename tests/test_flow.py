"""Flow exactness on tiny models of every family, a hand-computed two-layer case, grouping, and the trace records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmxray.flow import flow, read_flow
from lmxray.flow.groups import word_groups
from lmxray.flow.decompose import decompose
from lmxray.flow.frozen import Frozen
from lmxray.flow.maps import Affine, LayerMaps
from lmxray.models.loader import from_hf
from tiny_models import FAMILIES, FLOW_FAMILIES, BosTokenizer, tiny_model

RESID_TOL = 1e-4  # relative error of the sum over sources vs the true residual (fp32), the bound
LOGIT_TOL = 1e-4  # direct logit attribution sum vs the untraced model's logit (absolute, fp32)
HAND_TOL = 1e-6  # the hand-computed case
ROUND_TOL = 1e-6  # relative, values written to JSONL with 7 significant digits

PROMPT = "hello world, this is a flow"


@pytest.fixture(scope="module", params=sorted({**FAMILIES, **FLOW_FAMILIES}))
def family_flow(request):
    model = from_hf(tiny_model(request.param), BosTokenizer(), request.param)
    return request.param, model, flow(model, PROMPT, position=-3, tokens=("x", "!"), block_rows=40)


def test_sum_over_sources_is_the_true_residual(family_flow):
    family, _, result = family_flow
    assert result.error.shape == (3,)
    assert result.max_error <= RESID_TOL, f"{family}: sum over sources drifts {result.max_error:.2e} (tol {RESID_TOL})"


def test_logit_attribution_sums_to_the_untraced_logit(family_flow):
    family, model, result = family_flow
    untraced = model.logits(PROMPT)[result.position]
    assert [a.token_id for a in result.logits][1:] == [model.tokenizer("x", add_special_tokens=False)["input_ids"][0],
                                                       model.tokenizer("!", add_special_tokens=False)["input_ids"][0]]
    assert result.logits[0].token_id == int(untraced.argmax())
    for a in result.logits:
        drift = abs(a.total - float(untraced[a.token_id]))
        assert drift <= LOGIT_TOL, f"{family}: attribution of {a.text!r} sums {a.total} vs logit {untraced[a.token_id]}"
        assert np.all(a.contributions[result.reached(result.position):-1] == 0), "a later source contributed"


def test_causal_half_only(family_flow):
    _, _, result = family_flow
    upper = np.triu(np.ones(result.total.shape[1:], dtype=bool)[:, :-1], k=1)
    assert np.all(result.total[:, :, :-1][:, upper] == 0), "a source contributed before its position"


def test_groups_preserve_totals(family_flow):
    family, model, result = family_flow
    grouped = flow(model, PROMPT, position=-3, tokens=("x",), groups="0-4,6-9", block_rows=40)
    assert grouped.sources[0] == "".join(result.tokens[0:5]) and grouped.groups[1] == (5, 6)
    for a, b in zip(grouped.logits, result.logits):
        assert abs(a.total - b.total) <= LOGIT_TOL, f"{family}: grouping changed the attribution sum"
        assert abs(a.contributions[0] - b.contributions[0:5].sum()) <= LOGIT_TOL
    single = [i for i, (a, b) in enumerate(grouped.groups) if b - a == 1]
    for i in single:  # a one-token group is that token's source exactly
        s = grouped.groups[i][0]
        assert np.allclose(grouped.total[..., i], result.total[..., s], rtol=1e-5, atol=1e-6)
    assert np.allclose(grouped.total[..., -1], result.total[..., -1], rtol=1e-5, atol=1e-6), "bias changed"
    # norm of a sum <= sum of norms, and the grouped stream stays exact
    assert np.all(grouped.total[..., 0] <= result.total[..., 0:5].sum(-1) * (1 + 1e-5) + 1e-6)
    assert grouped.max_error <= RESID_TOL


def test_word_groups():
    tokens = ["<bos>", "The", " cap", "ital", " of", " Fr", "ance", ",", " ", "it", "'s"]
    assert [("".join(tokens[a:b])) for a, b in word_groups(tokens)] == \
        ["<bos>", "The", " capital", " of", " France", ",", " it", "'s"]


def test_flow_records_round_trip(family_flow, tmp_path):
    _, _, result = family_flow
    path = tmp_path / "flow.jsonl"
    result.save(path)
    back = read_flow(path)
    assert back.sources == result.sources and back.position == result.position
    for kind in ("attention", "mlp", "total"):
        a, b = getattr(back, kind), getattr(result, kind)
        assert np.allclose(a, b, rtol=ROUND_TOL, atol=1e-30), f"{kind} drifts {np.abs(a - b).max():.2e} on the round trip"
    assert back.logits[0].total == pytest.approx(result.logits[0].total, rel=1e-5)


def _identity_case(gate: float, bias: float):
    """Two layers, T = 2, d = 2, every map the identity, pattern [[1, 0], [.5, .5]], MLP = gate * x, o-bias (0, bias)."""
    eye = torch.eye(2)
    maps = LayerMaps(value=Affine(eye, None), out=Affine(eye, torch.tensor([0.0, bias])), attn_post=None,
                     up=Affine(eye, None), down=Affine(eye, None), mlp_post=None, centre=False, parallel=False,
                     n_heads=1, n_kv_heads=1)
    pattern = torch.tensor([[1.0, 0.0], [0.5, 0.5]])[None].expand(2, 1, 2, 2)
    ones = torch.ones(2, 2)
    frozen = Frozen(embedding=eye.clone(), residual=torch.zeros(2, 2, 2), pattern=pattern, input_scale=ones,
                    mlp_scale=ones, attn_post_scale=None, mlp_post_scale=None, mlp_gate=torch.full((2, 2, 2), gate),
                    final_scale=torch.ones(2), final_normed=torch.zeros(2, 2), logits=torch.zeros(2, 2), trace=None)
    return frozen, maps


def test_hand_computed_two_layers():
    # by hand, gate 0.5 (layer output = 1.5 * (c + attention)), bias b = (0, 3):
    # layer 0: c[0,0] = 1.5 * (e0 + e0) = 3 e0; c[1,0] = 1.5 * .5 e0 = .75 e0; c[1,1] = 1.5 * 1.5 e1 = 2.25 e1; bias 1.5 b
    # layer 1: attention (1,0) = .5 * 3 + .5 * .75 = 1.875; MLP (1,0) = .5 * (.75 + 1.875) = 1.3125; total 3.9375
    #          (1,1): attention .5 * 2.25 = 1.125, total 1.5 * 3.375 = 5.0625; bias: 1.5 * (1.5 b + 1.5 b + b) = 6 b
    frozen, maps = _identity_case(gate=0.5, bias=3.0)
    frozen.residual[0] = torch.tensor([[3.0, 4.5], [0.75, 2.25 + 4.5]])
    frozen.residual[1] = torch.tensor([[3.0 * 3.0, 18.0], [3.9375, 5.0625 + 18.0]])
    dec = decompose(frozen, lambda i: maps, position=1)
    expect = {("attention", 0, 1, 0): 0.5, ("mlp", 0, 1, 1): 0.75, ("total", 0, 1, 2): 4.5,
              ("attention", 1, 1, 0): 1.875, ("mlp", 1, 1, 0): 1.3125, ("total", 1, 1, 0): 3.9375,
              ("attention", 1, 1, 1): 1.125, ("total", 1, 1, 1): 5.0625, ("total", 1, 1, 2): 18.0,
              ("total", 1, 0, 0): 9.0, ("total", 1, 0, 1): 0.0}
    for (kind, layer, pos, src), value in expect.items():
        got = float(getattr(dec, kind)[layer, pos, src])
        assert abs(got - value) <= HAND_TOL, f"{kind}[{layer}, {pos}, {src}] = {got}, by hand {value}"
    assert float(dec.error.max()) <= HAND_TOL, f"hand case residual error {float(dec.error.max()):.2e}"
    assert torch.allclose(dec.final, torch.tensor([[3.9375, 0.0], [0.0, 5.0625], [0.0, 18.0]]))


def test_documented_flow_records_validate():
    import json
    from pathlib import Path

    import jsonschema

    from lmxray.trace.reader import load_schema

    doc = (Path(__file__).parent.parent / "docs" / "trace-format.md").read_text(encoding="utf-8")
    lines = [line for line in doc.splitlines() if line.startswith('{"record":"flow"')]
    assert len(lines) == 3, "the flow example in docs/trace-format.md moved"
    for line in lines:
        jsonschema.validate(json.loads(line), load_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"record": "flow", "kind": "logit", "layer": 0}, load_schema())
