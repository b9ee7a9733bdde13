"""The routes graph: nodes and edges over layers and positions, pruned top-down from one prediction.

Nodes are states of the residual stream and MLP blocks, named ``KIND/LAYER/POSITION``:
``embed/0/j`` (the residual entering layer 0), ``mid/l/i`` (after layer l's attention; sequential
models only), ``mlp/l/i`` (layer l's MLP output) and ``out/l/i`` (the residual leaving layer l).
An edge carries the normalised importance of one part of a sum into the node that sum makes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("embed", "mid", "mlp", "out")  # order within a layer, bottom to top


@dataclass(frozen=True)
class Node:
    """One residual state or MLP block."""

    id: str
    layer: int
    position: int
    kind: str  # one of KINDS


@dataclass(frozen=True)
class Edge:
    """One part of a sum: ``kind`` "attn" (summed over heads; ``heads`` per head), "mlp" or "residual"."""

    source: str
    target: str
    kind: str
    layer: int
    importance: float
    heads: tuple[float, ...] | None = None  # per head, attention edges only


@dataclass
class Graph:
    """The edges at or above the threshold that reach ``root`` (the prediction's last residual), and their nodes."""

    root: str
    threshold: float
    nodes: list[Node]
    edges: list[Edge]


def node_id(kind: str, layer: int, position: int) -> str:
    return f"{kind}/{layer}/{position}"


def _input(layer: int, position: int) -> str:
    """The residual entering ``layer``: the embedding for layer 0, else the previous layer's output."""
    return node_id("embed", 0, position) if layer == 0 else node_id("out", layer - 1, position)


def prune(heads: np.ndarray, residual: np.ndarray, mlp: np.ndarray, mlp_residual: np.ndarray | None,
          position: int, threshold: float) -> Graph:
    """Walk down from ``out/L-1/position``, keeping edges with importance >= ``threshold`` into reached nodes.

    ``heads`` [layer, head, query, key]; ``residual``, ``mlp``, ``mlp_residual`` [layer, query] as in
    ``LayerImportance`` (``mlp_residual`` None for parallel models). Attention edges are pruned on
    their importance summed over heads.
    """
    n_layers = heads.shape[0]
    summed = heads.sum(1)  # [layer, query, key]
    root = node_id("out", n_layers - 1, position)
    reached = np.zeros(heads.shape[2], dtype=bool)
    reached[position] = True  # positions of out/layer/* reached so far
    edges: list[Edge] = []
    for layer in reversed(range(n_layers)):
        feeds = np.zeros_like(reached)  # positions of the layer's input reached
        keep_mlp = reached & (mlp[layer] >= threshold)
        for i in np.flatnonzero(keep_mlp):
            w, into = float(mlp[layer, i]), node_id("mlp", layer, i)
            source = _input(layer, i) if mlp_residual is None else node_id("mid", layer, i)  # what the MLP reads
            edges += [Edge(source, into, "mlp", layer, w), Edge(into, node_id("out", layer, i), "mlp", layer, w)]
        if mlp_residual is None:
            target, attended = "out", reached
            feeds |= keep_mlp
        else:
            keep_mid = reached & (mlp_residual[layer] >= threshold)
            for i in np.flatnonzero(keep_mid):
                edges.append(Edge(node_id("mid", layer, i), node_id("out", layer, i), "residual", layer,
                                  float(mlp_residual[layer, i])))
            target, attended = "mid", keep_mid | keep_mlp
        for i in np.flatnonzero(attended):
            into = node_id(target, layer, i)
            for j in np.flatnonzero(summed[layer, i, :i + 1] >= threshold):
                edges.append(Edge(_input(layer, j), into, "attn", layer, float(summed[layer, i, j]),
                                  tuple(float(h) for h in heads[layer, :, i, j])))
                feeds[j] = True
            if residual[layer, i] >= threshold:
                edges.append(Edge(_input(layer, i), into, "residual", layer, float(residual[layer, i])))
                feeds[i] = True
        reached = feeds
    return Graph(root, threshold, _nodes(edges, root), sorted(edges, key=_edge_order))


def _parse(nid: str) -> Node:
    kind, layer, position = nid.split("/")
    return Node(nid, int(layer), int(position), kind)


def _node_order(node: Node) -> tuple:
    """Bottom to top: the embedding, then each layer's mid, mlp and out nodes, by position."""
    return (node.layer + (node.kind != "embed"), KINDS.index(node.kind), node.position)


def _edge_order(edge: Edge) -> tuple:
    return (_node_order(_parse(edge.target)), _node_order(_parse(edge.source)), edge.kind)


def _nodes(edges: list[Edge], root: str) -> list[Node]:
    ids = {root} | {e.source for e in edges} | {e.target for e in edges}
    return sorted((_parse(i) for i in ids), key=_node_order)
