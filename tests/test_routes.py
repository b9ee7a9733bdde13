"""Information-flow routes against a naive per-head, per-token computation on tiny models of every family,
the exactness of the parts, the pruning, the view, and `lmxray flow --method routes` (tiny model and built-in)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from lmxray.errors import LmxrayError
from lmxray.flow.maps import layer_maps
from lmxray.flow.routes import routes, run_pass
from lmxray.flow.routes_importance import head_vectors, layer_importance
from lmxray.models.loader import from_hf
from lmxray.views.routes import routes_view
from cli_helpers import assert_user_error, run
from tiny_models import FAMILIES, BosTokenizer, tiny_model

IMPORTANCE_TOL = 2e-5  # absolute, normalised importances vs the naive loop (fp32, d_model 32)
Z_TOL = 1e-5  # absolute, each part z[h, i<-j] vs the naive one built from the HF modules
RESID_TOL = 1e-4  # relative, residual + sum of the parts vs the untraced model's residual (the bound)
SUM_TOL = 1e-5  # the importances of one sum add up to 1
HAND_TOL = 1e-6

PROMPT = "hello world, this is"
POSITION = -3
THRESHOLD = 0.03

# Independent of lmxray's adapters: where each family's decoder layers, attention output projection and
# MLP live, the module whose input is the residual after attention (sequential) and the post-attention norm.
LAYERS = {"gpt2": "transformer.h", "gpt_neox": "gpt_neox.layers", "gpt_neox_sequential": "gpt_neox.layers"}
O_PROJ = {"gpt2": "attn.c_proj", "gpt_neox": "attention.dense", "gpt_neox_sequential": "attention.dense"}
MID_INPUT = {"gpt2": "ln_2", "gemma2": "pre_feedforward_layernorm", "gemma3_text": "pre_feedforward_layernorm"}
POST_NORM = {"gemma2": "post_attention_layernorm", "gemma3_text": "post_attention_layernorm"}
PARALLEL = {"gpt_neox"}


def _module(root, path: str):
    for part in path.split("."):
        root = getattr(root, part)
    return root


def _first(x):
    return (x[0] if isinstance(x, tuple) else x)[0].detach()


@torch.no_grad()
def naive(family: str, ids: list[int]) -> dict:
    """Per layer: the true residuals and sublayer outputs, each part z[h, i<-j] and its normalised importance,
    computed with loops from an eager copy of the model: the pattern and values from its own eager attention
    function, W_O^h v_j as its output projection applied to head h's slice alone."""
    hf = tiny_model(family)  # eager attention, the same seeded weights as the model under test
    blocks = _module(hf, LAYERS.get(family, "model.layers"))
    modeling = sys.modules[type(blocks[0]).__module__]
    seen, hooks = {k: [] for k in ("x", "post", "mid", "raw", "mlp", "attn")}, []
    eager = modeling.eager_attention_forward

    def spy(module, query, key, value, attention_mask, **kwargs):
        out, weights = eager(module, query, key, value, attention_mask, **kwargs)
        seen["attn"].append((value[0].detach(), weights[0].detach()))  # [kv_head, pos, d_head], [head, q, k]
        return out, weights

    for block in blocks:
        hooks.append(block.register_forward_pre_hook(
            lambda m, a, k: seen["x"].append(_first(a[0] if a else k["hidden_states"])), with_kwargs=True))
        hooks.append(block.register_forward_hook(lambda m, a, o: seen["post"].append(_first(o))))
        hooks.append(_module(block, O_PROJ.get(family, "self_attn.o_proj")).register_forward_hook(
            lambda m, a, o: seen["raw"].append(_first(o))))
        if family in PARALLEL:
            hooks.append(block.mlp.register_forward_hook(lambda m, a, o: seen["mlp"].append(_first(o))))
        else:
            hooks.append(_module(block, MID_INPUT.get(family, "post_attention_layernorm")).register_forward_pre_hook(
                lambda m, a: seen["mid"].append(_first(a))))
    modeling.eager_attention_forward = spy
    try:
        hf(torch.tensor([ids]), use_cache=False)
    finally:
        modeling.eager_attention_forward = eager
        for h in hooks:
            h.remove()
    return {"layers": [_naive_layer(family, blocks[i], {k: v[i] for k, v in seen.items() if v})
                       for i in range(len(blocks))]}


def _proximities(y: torch.Tensor, parts: list[torch.Tensor]) -> list[float]:
    prox = [max(0.0, float(y.abs().sum() - (y - c).abs().sum())) for c in parts]
    return [p / sum(prox) for p in prox]


def _naive_layer(family: str, block, seen: dict) -> dict:
    x, post, raw = seen["x"], seen["post"], seen["raw"]
    value, pattern = seen["attn"]
    n_heads, n_tokens = pattern.shape[0], pattern.shape[1]
    group, d_head = n_heads // value.shape[0], value.shape[-1]
    o_proj = _module(block, O_PROJ.get(family, "self_attn.o_proj"))
    bias = o_proj(torch.zeros(n_heads * d_head))  # b_O (zero when there is none), shared evenly by the heads
    z = torch.zeros(n_heads, n_tokens, n_tokens, x.shape[-1])
    for h in range(n_heads):
        for j in range(n_tokens):
            alone = torch.zeros(n_heads * d_head)
            alone[h * d_head:(h + 1) * d_head] = value[h // group, j]
            head_out = o_proj(alone) - bias + bias / n_heads
            for i in range(j, n_tokens):
                z[h, i, j] = pattern[h, i, j] * head_out
    if family in POST_NORM:  # Gemma: RMS norm of the whole attention output, (1 + w) * raw / rms(raw)
        norm = _module(block, POST_NORM[family])
        scale = torch.rsqrt(raw.pow(2).mean(-1) + norm.eps)
        z = z * scale[None, :, None, None] * (1 + norm.weight)
    mid = post - seen["mlp"] if family in PARALLEL else seen["mid"]
    mlp = seen["mlp"] if family in PARALLEL else post - mid
    heads, residual, mlp_imp, mlp_residual = torch.zeros(n_heads, n_tokens, n_tokens), [], [], []
    for i in range(n_tokens):
        parts = [x[i]] + [z[h, i, j] for h in range(n_heads) for j in range(i + 1)]
        if family in PARALLEL:
            imp = _proximities(post[i], parts + [mlp[i]])
            mlp_imp.append(imp.pop())
        else:
            imp = _proximities(mid[i], parts)
            m, r = _proximities(post[i], [mlp[i], mid[i]])
            mlp_imp.append(m)
            mlp_residual.append(r)
        residual.append(imp[0])
        heads[:, i, :i + 1] = torch.tensor(imp[1:]).view(n_heads, i + 1)
    return {"x": x, "mid": mid, "post": post, "mlp": mlp, "z": z, "heads": heads.numpy(),
            "residual": np.array(residual), "mlp_imp": np.array(mlp_imp),
            "mlp_residual": np.array(mlp_residual) if mlp_residual else None}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def case(request):
    family = request.param
    model = from_hf(tiny_model(family), BosTokenizer(), family)
    result = routes(model, PROMPT, position=POSITION, threshold=THRESHOLD, chunk_bytes=4096)  # many chunks
    return family, model, result, naive(family, model.encode(PROMPT))


def test_importances_match_the_naive_loop(case):
    family, _, result, ref = case
    assert result.parallel == (family in PARALLEL)
    for layer, want in enumerate(ref["layers"]):
        for name, got, expect in (("heads", result.heads[layer], want["heads"]),
                                  ("residual", result.residual[layer], want["residual"]),
                                  ("mlp", result.mlp[layer], want["mlp_imp"])):
            drift = float(np.abs(got - expect).max())
            assert drift <= IMPORTANCE_TOL, f"{family} layer {layer}: {name} drifts {drift:.2e} (tol {IMPORTANCE_TOL})"
        if family in PARALLEL:
            assert result.mlp_residual is None
        else:
            drift = float(np.abs(result.mlp_residual[layer] - want["mlp_residual"]).max())
            assert drift <= IMPORTANCE_TOL, f"{family} layer {layer}: mlp_residual drifts {drift:.2e}"


def test_parts_reconstruct_the_untraced_residual(case):
    family, model, result, ref = case
    captured = run_pass(model, model.encode(PROMPT), result.position)
    assert result.max_error <= RESID_TOL, f"{family}: the library's own check reports {result.max_error:.2e}"
    for layer, want in enumerate(ref["layers"]):
        vec = captured.head_vectors(layer_maps(model, layer), layer)
        src = vec.a[:, None] * (1 if vec.scale is None else vec.scale[None, :, None, None])
        z = captured.pattern[layer][..., None] * (src + (0 if vec.shift is None else vec.shift))  # [head, i, j, d]
        drift = float((z - want["z"]).abs().max())
        assert drift <= Z_TOL, f"{family} layer {layer}: a part z[h, i<-j] drifts {drift:.2e} from the naive one"
        total = want["x"] + z.sum((0, 2)) + (want["mlp"] if family in PARALLEL else 0)
        true = want["post"] if family in PARALLEL else want["mid"]
        rel = float(((total - true).norm(dim=-1) / true.norm(dim=-1)).max())
        assert rel <= RESID_TOL, \
            f"{family} layer {layer}: residual + sum of the parts is {rel:.2e} off the untraced one"


def test_importances_of_each_sum_add_to_one(case):
    family, _, result, _ = case
    total = result.heads.sum((1, 3)) + result.residual + (result.mlp if result.parallel else 0)
    assert np.abs(total - 1).max() <= SUM_TOL, f"{family}: attention sum's importances add to {total}"
    if not result.parallel:
        assert np.abs(result.mlp + result.mlp_residual - 1).max() <= SUM_TOL
    assert np.all(np.triu(np.ones(result.heads.shape[2:], bool), 1)[None, None] <= (result.heads == 0)), \
        "a key after its query has an importance"


def _reachable_edges(result, threshold: float) -> set:
    """Brute force: every edge >= threshold from the dense arrays, then those whose target reaches the root."""
    n_layers, _, n_tokens, _ = result.heads.shape
    summed = result.heads.sum(1)
    into = lambda layer, i: f"embed/0/{i}" if layer == 0 else f"out/{layer - 1}/{i}"  # noqa: E731
    every = []
    for layer in range(n_layers):
        sum_node = "out" if result.parallel else "mid"
        for i in range(n_tokens):
            every += [(into(layer, j), f"{sum_node}/{layer}/{i}", "attn", summed[layer, i, j]) for j in range(i + 1)]
            every.append((into(layer, i), f"{sum_node}/{layer}/{i}", "residual", result.residual[layer, i]))
            reads = into(layer, i) if result.parallel else f"mid/{layer}/{i}"
            every += [(reads, f"mlp/{layer}/{i}", "mlp", result.mlp[layer, i]),
                      (f"mlp/{layer}/{i}", f"out/{layer}/{i}", "mlp", result.mlp[layer, i])]
            if not result.parallel:
                every.append((f"mid/{layer}/{i}", f"out/{layer}/{i}", "residual", result.mlp_residual[layer, i]))
    strong = [e for e in every if e[3] >= threshold]
    reached, kept = {f"out/{n_layers - 1}/{result.position}"}, set()
    while True:
        new = {e[:3] for e in strong if e[1] in reached} - kept
        if not new:
            return kept
        kept |= new
        reached |= {e[0] for e in new}


@pytest.mark.parametrize("threshold", [THRESHOLD, 0.1])
def test_pruning_keeps_exactly_the_reachable_edges_over_the_threshold(case, threshold):
    from lmxray.flow.routes_graph import prune

    family, _, result, _ = case
    graph = prune(result.heads, result.residual, result.mlp, result.mlp_residual, result.position, threshold)
    got = {(e.source, e.target, e.kind) for e in graph.edges}
    assert len(got) == len(graph.edges), "an edge is listed twice"
    assert got == _reachable_edges(result, threshold), f"{family}: pruned edges differ from the brute force"
    assert all(e.importance >= threshold for e in graph.edges)
    ends = {e.source for e in graph.edges} | {e.target for e in graph.edges}
    assert {n.id for n in graph.nodes} == ends | {graph.root}
    for e in graph.edges:
        if e.kind == "attn":
            assert abs(sum(e.heads) - e.importance) <= 1e-6 and len(e.heads) == result.heads.shape[1]
    if threshold == THRESHOLD:
        assert [(e.source, e.target, e.kind) for e in graph.edges] == \
            [(e.source, e.target, e.kind) for e in result.graph.edges]


def test_chunks_do_not_change_the_result(case):
    family, model, result, _ = case
    whole = routes(model, PROMPT, position=POSITION, threshold=THRESHOLD)
    assert np.abs(whole.heads - result.heads).max() <= 1e-6, f"{family}: chunking changed the importances"


def test_hand_computed_proximities():
    # one token, one head, d = 2: x = (1, 0), z = (1, 0) -> y = (2, 0): proximity 1 each, 0.5 after normalising;
    # z = (-3, 0) -> y = (-2, 0): x's proximity 2 - 3 < 0 -> 0, z's 2 - 1 = 1 -> importance 1
    from lmxray.flow.routes_importance import HeadVectors

    x, pattern = torch.tensor([[1.0, 0.0]]), torch.ones(1, 1, 1)
    for zv, want_head, want_residual in (((1.0, 0.0), 0.5, 0.5), ((-3.0, 0.0), 1.0, 0.0)):
        z = torch.tensor([zv])
        imp = layer_importance(x, z, torch.zeros(1, 2), x + z, pattern, HeadVectors(z[None], None, None), False)
        assert abs(float(imp.heads[0, 0, 0]) - want_head) <= HAND_TOL
        assert abs(float(imp.residual[0]) - want_residual) <= HAND_TOL
        assert abs(float(imp.mlp[0])) <= HAND_TOL and abs(float(imp.mlp_residual[0]) - 1) <= HAND_TOL
        assert imp.error <= HAND_TOL


def test_head_vectors_share_the_output_bias():
    from lmxray.flow.maps import Affine, LayerMaps

    eye = torch.eye(2)
    maps = LayerMaps(value=Affine(torch.tensor([[1.0, 0.0]]), None), out=Affine(eye, torch.tensor([2.0, 4.0])),
                     attn_post=None, up=Affine(eye, None), down=Affine(eye, None), mlp_post=None, centre=False,
                     parallel=False, n_heads=2, n_kv_heads=1)  # one kv head of width 1 (x's first dim), shared by
    vec = head_vectors(torch.tensor([[3.0, 5.0]]), torch.ones(1), maps, None)  # both; head h writes output dim h
    assert torch.allclose(vec.a, torch.tensor([[[3.0 + 1.0, 2.0]], [[1.0, 3.0 + 2.0]]])), vec.a  # + b_O / 2 each


def test_to_dict_and_view(case):
    family, _, result, _ = case
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["root"] == f"out/{result.heads.shape[0] - 1}/{result.position}" and data["threshold"] == THRESHOLD
    assert len(data["edges"]) == len(result.graph.edges) and len(data["nodes"]) == len(result.graph.nodes)
    view = routes_view(result).to_dict()
    for key in ("nodes", "edges", "root", "tokens", "position", "prediction", "error", "parallel"):
        assert view[key] == data[key], f"{family}: the view's {key} differs from Routes.to_dict()"
    attn = [e for e in data["edges"] if e["kind"] == "attn"]
    listed = [r for layer in view["layers"] for r in layer["attention"]]
    assert sorted(r["importance"] for r in listed) == sorted(e["importance"] for e in attn)
    for layer in view["layers"]:
        values = [r["importance"] for r in layer["attention"]]
        assert values == sorted(values, reverse=True)


def test_bad_arguments(case):
    _, model, _, _ = case
    for bad in (0, 1.5, -0.1, True, "0.1", float("nan")):
        with pytest.raises(LmxrayError, match="threshold"):
            routes(model, PROMPT, threshold=bad)
    with pytest.raises(LmxrayError, match="out of range"):
        routes(model, PROMPT, position=len(model.encode(PROMPT)))
    with pytest.raises(LmxrayError, match="chunk_bytes"):
        routes(model, PROMPT, chunk_bytes=0)


def test_cli_routes_on_a_tiny_model(capsys, tiny_dir, tmp_path):
    out = tmp_path / "routes.json"
    code, stdout, _ = run(capsys, "flow", PROMPT, "--model", tiny_dir, "--method", "routes", "--threshold", "0.05",
                          "--out", out)
    assert code == 0
    for text in ("routes into the prediction at threshold 0.05", "strongest kept edges per layer",
                 "max relative error", f"routes graph written to {out}"):
        assert text in stdout, f"{text!r} missing from the routes output"
    written = json.loads(out.read_text())
    code, stdout, _ = run(capsys, "flow", PROMPT, "--model", tiny_dir, "--method", "routes", "--threshold", "0.05",
                          "--json")
    printed = json.loads(stdout)
    assert code == 0 and {k: v for k, v in printed.items() if k != "out"} == \
        {k: v for k, v in written.items() if k != "out"}
    assert written["method"] == "routes" and written["max_error"] <= RESID_TOL and written["edges"]
    assert all(e["importance"] >= 0.05 for e in written["edges"])


def test_cli_routes_summary_says_what_the_graph_holds(capsys, tiny_dir, tmp_path, monkeypatch):
    """The console summary against the graph it summarises (the --out JSON): the header, the edge counts by kind,
    and per layer the strongest attention edges (with their strongest head) and MLP blocks, recomputed here."""
    from lmxray.cli.app import out as console

    monkeypatch.setattr(console, "width", 1000)  # one line per table row
    top, path = 2, tmp_path / "routes.json"
    code, stdout, _ = run(capsys, "flow", PROMPT, "--model", tiny_dir, "--method", "routes", "--threshold", "0.005",
                          "--top-k", top, "--out", path)
    assert code == 0
    graph = json.loads(path.read_text())
    info, tokens, p = graph["model_info"], graph["tokens"], graph["position"]
    nodes = {n["id"]: n for n in graph["nodes"]}
    kinds = [e["kind"] for e in graph["edges"]]
    for line in (f"{info['name']} ({info['architecture']}, {graph['n_layers']} layers x {graph['n_heads']} heads, "
                 f"{info['dtype']})",
                 f"prompt: {PROMPT!r}  ({len(tokens)} tokens)",
                 f"position {p} {tokens[p]!r}: prediction {graph['prediction']['text']!r}  "
                 f"confidence {graph['prediction']['prob']:.4f}",
                 f"routes into the prediction at threshold 0.005: {len(nodes)} nodes, {len(kinds)} edges "
                 f"({kinds.count('attn')} attention, {kinds.count('mlp')} MLP, {kinds.count('residual')} residual)",
                 f"max relative error, sum of the parts vs the true residual: {graph['max_error']:.2e}",
                 f"routes graph written to {path}"):
        assert line in stdout.splitlines(), f"{line!r} missing from the summary:\n{stdout}"
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in stdout.splitlines()
            if line.startswith("│")]  # a table row: layer, attention, MLP
    assert [int(r[0]) for r in rows] == list(range(graph["n_layers"]))[::-1], "layers not listed top to bottom"
    shown_more = False
    for layer, attention, mlp in rows:
        edges = sorted((e for e in graph["edges"] if e["layer"] == int(layer)), key=lambda e: -e["importance"])
        attn = [e for e in edges if e["kind"] == "attn"]
        cells = []
        for e in attn[:top]:
            head = int(np.argmax(e["heads"]))
            j, i = nodes[e["source"]]["position"], nodes[e["target"]]["position"]
            cells.append(f"{tokens[j]!r}@{j} -> {i} {e['importance']:.2f} (h{head} {e['heads'][head]:.2f})")
        if len(attn) > top:
            cells.append(f"(+{len(attn) - top} more)")
            shown_more = True
        blocks = [e for e in edges if e["kind"] == "mlp" and nodes[e["source"]]["kind"] == "mlp"][:top]
        want_mlp = [f"{tokens[nodes[e['source']]['position']]!r}@{nodes[e['source']]['position']} "
                    f"{e['importance']:.2f}" for e in blocks]
        assert attention == (", ".join(cells) or "-"), f"layer {layer}: attention cell is not the graph's"
        assert mlp == (", ".join(want_mlp) or "-"), f"layer {layer}: MLP cell is not the graph's"
    assert shown_more and any(r[2] != "-" for r in rows), "the threshold keeps too little to check the table"


def test_cli_routes_bad_input(capsys, tiny_dir, tmp_path):
    out = tmp_path / "bad.json"
    base = ["flow", "hello", "--model", tiny_dir, "--method", "routes", "--out", out]
    assert_user_error(capsys, base + ["--threshold", "0"], "--threshold", "(0, 1]", out_file=out)
    assert_user_error(capsys, base + ["--threshold", "1.5"], "--threshold", out_file=out)
    assert_user_error(capsys, base + ["--position", "9"], "--position 9", "out of range", out_file=out)
    assert_user_error(capsys, base + ["--token", "x"], "--token", "exact", out_file=out)
    assert_user_error(capsys, base + ["--group", "words"], "--group", "exact", out_file=out)
    assert_user_error(capsys, ["flow", "hello", "--model", tiny_dir, "--method", "route"], "--method", "routes")
    assert_user_error(capsys, ["flow", "hello", "--model", tiny_dir, "--threshold", "0.1"], "--threshold",
                      "--method routes")
    bad_suffix = tmp_path / "r.jsonl"
    assert_user_error(capsys, base[:-1] + [bad_suffix], ".jsonl", ".json", out_file=bad_suffix)


@pytest.mark.builtin
def test_cli_routes_builtin(capsys):
    code, stdout, _ = run(capsys, "flow", "The capital of France is", "--method", "routes", "--json")
    assert code == 0
    data = json.loads(stdout)
    assert data["prediction"]["text"] == " Paris" and data["threshold"] == 0.04
    assert data["max_error"] <= RESID_TOL, f"builtin: sum of the parts drifts {data['max_error']:.2e}"
    assert data["n_layers"] == 30 and data["n_heads"] == 9 and not data["parallel"]
    into_root = [e for e in data["edges"] if e["target"] == data["root"]]
    assert into_root and all(e["importance"] >= 0.04 for e in data["edges"])
    assert any(e["kind"] == "attn" and e["source"] != e["target"] for e in data["edges"]), "no attention route"
