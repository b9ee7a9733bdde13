"""The routes view: the pruned information-flow graph into one prediction, and per layer its strongest edges."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lmxray.views.base import View

if TYPE_CHECKING:
    from lmxray.flow.routes import Routes


@dataclass
class AttentionRoute:
    """One kept attention edge, source token ``source`` -> query token ``target`` (positions), strongest first."""

    source: int
    target: int
    source_token: str
    target_token: str
    importance: float  # summed over heads
    top_head: int
    top_head_importance: float


@dataclass
class MlpRoute:
    """One kept MLP block at ``position``."""

    position: int
    token: str
    importance: float


@dataclass
class RouteLayer:
    """A layer's kept edges: attention edges and MLP blocks by importance, and how many edges it keeps in all."""

    layer: int
    attention: list[AttentionRoute]
    mlp: list[MlpRoute]
    n_edges: int  # residual and MLP-input edges included


@dataclass
class RoutesView(View):
    """What `lmxray flow --method routes --json` prints; ``nodes``, ``edges``, ``root`` as in ``Routes.to_dict()``."""

    method: str
    model: str
    model_info: dict
    prompt: str
    tokens: list[str]
    token_ids: list[int]
    position: int
    prediction: dict  # {token_id, text, prob}
    threshold: float
    parallel: bool
    n_layers: int
    n_heads: int
    max_error: float
    error: list[float]  # per layer: max relative |sum of the parts - true residual|
    root: str
    nodes: list[dict]  # {id, layer, position, kind}
    edges: list[dict]  # {source, target, kind, layer, importance, heads}
    layers: list[RouteLayer]  # bottom to top
    out: str | None = None


def _position(node_id: str) -> int:
    return int(node_id.rsplit("/", 1)[1])


def _layer(data: dict, layer: int) -> RouteLayer:
    tokens = data["tokens"]
    edges = [e for e in data["edges"] if e["layer"] == layer]
    attention = []
    for e in (e for e in edges if e["kind"] == "attn"):
        j, i = _position(e["source"]), _position(e["target"])
        top = max(range(len(e["heads"])), key=lambda h: e["heads"][h])
        attention.append(AttentionRoute(j, i, tokens[j], tokens[i], e["importance"], top, e["heads"][top]))
    mlp = [MlpRoute(_position(e["source"]), tokens[_position(e["source"])], e["importance"])
           for e in edges if e["kind"] == "mlp" and e["source"].startswith("mlp/")]
    return RouteLayer(layer, sorted(attention, key=lambda r: -r.importance), sorted(mlp, key=lambda r: -r.importance),
                      len(edges))


def routes_view(routes: Routes, out: Path | str | None = None) -> RoutesView:
    """Arrange Routes (lmxray.flow.routes) for every renderer: the graph as ``to_dict()`` gives it, plus per layer."""
    data = routes.to_dict()
    info = data.pop("model")
    data.pop("method")
    return RoutesView(method="routes", model=info["name"], model_info=info, **data,
                      layers=[_layer(data, layer) for layer in range(data["n_layers"])],
                      out=None if out is None else str(out))
