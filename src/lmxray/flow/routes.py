"""Information-flow routes (Ferrando & Voita, 2024), the graph the LLM Transparency Tool draws, from one forward pass.

    from lmxray.flow.routes import routes
    r = routes(model, "The capital of France is", threshold=0.04)
    r.heads[layer, head, i, j]     # importance of head h's edge j -> i in layer's attention sum
    r.graph.edges                  # the edges >= threshold that reach the prediction at r.position
    r.to_dict()                    # JSON-ready: the pruned graph and what it was built from

Each residual update is a sum of parts (the residual itself, one part per head and source token,
the MLP output); each part's importance is its L1 proximity to the sum, normalised over the parts
(lmxray.flow.routes_importance). The graph keeps the edges at or above a threshold that reach the
chosen prediction, walking down from the last layer (lmxray.flow.routes_graph). Cost O(L H T^2 d).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from lmxray.capture import CapturePlan, capture, resolve_position
from lmxray.errors import LmxrayError
from lmxray.flow.maps import LayerMaps, layer_maps
from lmxray.flow.routes_graph import Graph, prune
from lmxray.flow.routes_importance import HeadVectors, head_vectors, layer_importance
from lmxray.trace.types import ModelInfo

DEFAULT_THRESHOLD = 0.04  # the LLM Transparency Tool's default edge threshold

# Per-head patterns, full residuals and sublayer outputs, and the frozen norm scales; nothing else.
_PLAN = CapturePlan(attention=False, per_head=True, row_stats=False,
                    components=("input_embedding", "residual", "attention_output", "mlp_output"),
                    n_values=None, lens=False, frozen=True)


@dataclass
class Prediction:
    """The model's top token at the routes' position."""

    token_id: int
    text: str
    prob: float


@dataclass
class Routes:
    """Every edge's importance (dense arrays) and the graph pruned to the routes into one prediction."""

    model: ModelInfo
    prompt: str
    token_ids: list[int]
    tokens: list[str]
    position: int
    prediction: Prediction
    parallel: bool  # attention and MLP read the same residual: one sum per layer, no mid nodes
    heads: np.ndarray  # [layer, head, query, key]: importance of z[h, i<-j] in the attention sum (0 for j > i)
    residual: np.ndarray  # [layer, query]: the residual's importance in the attention sum (parallel: the one sum)
    mlp: np.ndarray  # [layer, query]: the MLP output's importance
    mlp_residual: np.ndarray | None  # [layer, query]: the mid residual's importance in the MLP sum; None if parallel
    error: np.ndarray  # [layer]: max relative |sum of the parts - true residual|
    graph: Graph

    @property
    def attention(self) -> np.ndarray:
        """Token-level attention importances [layer, query, key]: the heads summed."""
        return self.heads.sum(1)

    @property
    def threshold(self) -> float:
        return self.graph.threshold

    @property
    def max_error(self) -> float:
        return float(self.error.max())

    def to_dict(self) -> dict:
        """JSON-ready: the pruned graph, the prediction and the exactness check (the dense arrays are left out)."""
        return {
            "method": "routes", "model": dataclasses.asdict(self.model), "prompt": self.prompt,
            "tokens": list(self.tokens), "token_ids": list(self.token_ids), "position": self.position,
            "prediction": dataclasses.asdict(self.prediction), "threshold": self.threshold,
            "parallel": self.parallel, "n_layers": int(self.heads.shape[0]), "n_heads": int(self.heads.shape[1]),
            "max_error": self.max_error, "error": [float(e) for e in self.error], "root": self.graph.root,
            "nodes": [dataclasses.asdict(n) for n in self.graph.nodes],
            "edges": [{**dataclasses.asdict(e), "heads": None if e.heads is None else list(e.heads)}
                      for e in self.graph.edges],
        }


def check_threshold(threshold) -> float:
    """A threshold in (0, 1] as a float, or a user error."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise LmxrayError(f"threshold must lie in (0, 1], got {threshold!r}", "pass e.g. threshold=0.04",
                          params=("threshold",))
    return float(threshold)


@dataclass
class Pass:
    """What one captured forward pass gives the routes, fp32 on the model's device, ``[layer, pos, ...]``."""

    embedding: torch.Tensor  # [pos, d_model]: the residual entering layer 0
    residual: torch.Tensor  # [layer, pos, d_model]: the residual leaving each layer
    attn_out: torch.Tensor  # [layer, pos, d_model]: what attention adds (after a post-norm)
    mlp_out: torch.Tensor  # [layer, pos, d_model]: what the MLP adds
    pattern: torch.Tensor  # [layer, head, query, key]
    input_scale: torch.Tensor  # [layer, pos]: the frozen scale of the norm before attention
    post_scale: torch.Tensor | None  # [layer, pos]: the attention post-norm's frozen scale (Gemma), else None
    logits: torch.Tensor  # [vocab]: the final logits at the position

    def layer_input(self, layer: int) -> torch.Tensor:
        return self.embedding if layer == 0 else self.residual[layer - 1]

    def head_vectors(self, maps: LayerMaps, layer: int) -> HeadVectors:
        """Layer ``layer``'s per-head, per-source output vectors (see routes_importance.head_vectors)."""
        post = None if self.post_scale is None else self.post_scale[layer]
        return head_vectors(self.layer_input(layer), self.input_scale[layer], maps, post)


@torch.no_grad()
def run_pass(model, ids: list[int], position: int) -> Pass:
    """One forward pass over ``ids`` keeping what the routes need (per-head patterns, full residuals)."""
    captured = capture(model, [ids], _PLAN, rows="all", logits_at=[position])
    vectors = lambda k: captured.summary(k)[1]  # noqa: E731  [layer, batch, pos, d_model]
    post = captured.frozen.stacked("attn_post")
    return Pass(embedding=vectors("input_embedding")[0, 0], residual=vectors("residual")[:, 0],
                attn_out=vectors("attention_output")[:, 0], mlp_out=vectors("mlp_output")[:, 0],
                pattern=captured.attention_heads[:, 0], input_scale=captured.frozen.stacked("input")[:, 0],
                post_scale=None if post is None else post[:, 0], logits=captured.logits_at(0, position).float())


@torch.no_grad()
def routes(model, prompt: str, *, position: int = -1, threshold: float = DEFAULT_THRESHOLD,
           chunk_bytes: int | None = None) -> Routes:
    """Edge importances of every layer for ``prompt`` and the graph of routes into the prediction at ``position``.

    ``threshold``: the least importance an edge needs to stay in the graph, in (0, 1];
    ``chunk_bytes``: bound on one ``[head, rows, key, d_model]`` fp32 block of the computation (None: 4 MiB
    on CPU, 256 MiB on a GPU; memory is O(H T^2) whatever the bound).
    """
    threshold = check_threshold(threshold)
    if chunk_bytes is not None and (isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, int)
                                    or chunk_bytes < 1):
        raise LmxrayError(f"chunk_bytes must be a positive integer or None, got {chunk_bytes!r}",
                          "leave the default (None) or pass e.g. chunk_bytes=2**24", params=("chunk_bytes",))
    ids = model.encode(prompt)
    p = resolve_position(position, len(ids))
    run = run_pass(model, ids, p)
    n_layers, n_heads, n_tokens = run.pattern.shape[:3]
    heads = np.zeros((n_layers, n_heads, n_tokens, n_tokens), dtype=np.float32)  # filled layer by layer
    residual, mlp, mlp_residual = (np.zeros((n_layers, n_tokens), dtype=np.float32) for _ in range(3))
    error = np.zeros(n_layers)
    parallel = False
    for layer in range(n_layers):
        maps = layer_maps(model, layer)
        parallel = maps.parallel
        imp = layer_importance(run.layer_input(layer), run.attn_out[layer], run.mlp_out[layer], run.residual[layer],
                               run.pattern[layer], run.head_vectors(maps, layer), parallel, chunk_bytes)
        heads[layer], residual[layer], mlp[layer] = (t.cpu().numpy() for t in (imp.heads, imp.residual, imp.mlp))
        if imp.mlp_residual is not None:
            mlp_residual[layer] = imp.mlp_residual.cpu().numpy()
        error[layer] = imp.error
        del imp
    mlp_residual = None if parallel else mlp_residual
    top = int(run.logits.argmax())
    return Routes(
        model=model.info, prompt=prompt, token_ids=list(ids), tokens=model.token_texts(ids), position=p,
        prediction=Prediction(top, model.token_text(top), float(torch.softmax(run.logits, -1)[top])),
        parallel=parallel, heads=heads, residual=residual, mlp=mlp, mlp_residual=mlp_residual, error=error,
        graph=prune(heads, residual, mlp, mlp_residual, p, threshold),
    )
