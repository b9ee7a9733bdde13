/** The graph's data: layers × tokens nodes, weighted edges between consecutive rows, and pruning to the prediction. */

export const ATTENTION = 0;
export const RESIDUAL = 1;
export const MLP = 2;

/** One edge before packing: from token ``src`` on row ``layer`` to token ``dst`` on row ``layer + 1``. */
export interface EdgeInput {
  layer: number; // index into ``layers`` (edge layer i joins row i to row i + 1; row 0 is the embeddings)
  src: number;
  dst: number;
  weight: number;
  kind?: number;
}

/** Edges packed in typed arrays, grouped by layer (``offsets[i]..offsets[i+1]`` are layer i's). */
export interface GraphData {
  tokens: string[];
  layers: number[]; // model layer of each edge layer
  position: number; // the prediction position: the top row's root node
  measure: string; // what an edge weight is ("attention weight", "route importance")
  implicitResidual: boolean; // a reached node also reaches its own token one row down (attention graphs)
  src: Int32Array;
  dst: Int32Array;
  weight: Float32Array;
  kind: Uint8Array;
  offsets: Int32Array;
}

/** The pruned graph: kept edge indices and, per node (``row * nTokens + token``), whether it reaches the root. */
export interface Pruned {
  threshold: number;
  kept: Int32Array;
  reached: Uint8Array;
}

export function buildGraph(init: Omit<GraphData, "src" | "dst" | "weight" | "kind" | "offsets">,
  edges: EdgeInput[]): GraphData {
  const L = init.layers.length;
  const counts = new Int32Array(L + 1);
  for (const e of edges) {
    if (!(e.layer >= 0 && e.layer < L)) throw new Error(`edge layer ${e.layer} outside 0..${L - 1}`);
    counts[e.layer + 1]++;
  }
  const offsets = new Int32Array(L + 1);
  for (let i = 1; i <= L; i++) offsets[i] = offsets[i - 1] + counts[i];
  const fill = offsets.slice(0, L);
  const n = edges.length;
  const g: GraphData = { ...init, src: new Int32Array(n), dst: new Int32Array(n), weight: new Float32Array(n),
    kind: new Uint8Array(n), offsets };
  for (const e of edges) {
    const at = fill[e.layer]++;
    g.src[at] = e.src;
    g.dst[at] = e.dst;
    g.weight[at] = e.weight;
    g.kind[at] = e.kind ?? ATTENTION;
  }
  return g;
}

/** One layer's attention map (summed over ``nHeads`` heads, so each row sums to ``nHeads``). */
export interface LayerMap {
  layer: number;
  values: number[][]; // [query, key]
}

/**
 * The attention graph: edge (key j on row i) -> (query q on row i + 1) weighs the head-averaged attention
 * ``values[q][j] / nHeads``; weights below ``floor`` are left out (they could never pass a threshold above it).
 */
export function attentionGraph(tokens: string[], maps: LayerMap[], nHeads: number, position: number,
  floor = 1e-3): GraphData {
  const edges: EdgeInput[] = [];
  maps.forEach((m, i) => {
    for (let q = 0; q <= position && q < m.values.length; q++) {
      const row = m.values[q];
      for (let k = 0; k <= q && k < row.length; k++) {
        const w = row[k] / nHeads;
        if (w >= floor) edges.push({ layer: i, src: k, dst: q, weight: w });
      }
    }
  });
  return buildGraph({ tokens, layers: maps.map((m) => m.layer), position, measure: "attention weight (head mean)",
    implicitResidual: true }, edges);
}

/**
 * Keep the edges of weight >= ``threshold`` that lie on a path into the root (top row, ``position``), walking
 * down one layer at a time: an edge counts when its upper end is already reached. O(edges + layers × tokens).
 */
export function prune(g: GraphData, threshold: number): Pruned {
  const T = g.tokens.length;
  const L = g.layers.length;
  const reached = new Uint8Array((L + 1) * T);
  reached[L * T + g.position] = 1;
  const kept: number[] = [];
  for (let i = L - 1; i >= 0; i--) {
    const up = (i + 1) * T;
    const down = i * T;
    if (g.implicitResidual) for (let t = 0; t < T; t++) if (reached[up + t]) reached[down + t] = 1;
    for (let e = g.offsets[i]; e < g.offsets[i + 1]; e++) {
      if (g.weight[e] >= threshold && reached[up + g.dst[e]]) {
        kept.push(e);
        reached[down + g.src[e]] = 1;
      }
    }
  }
  return { threshold, kept: Int32Array.from(kept), reached };
}

/** The kept edges into and out of node (``row``, ``token``), strongest first. */
export function nodeEdges(g: GraphData, p: Pruned, row: number, token: number): { incoming: number[]; outgoing: number[] } {
  const incoming: number[] = [];
  const outgoing: number[] = [];
  for (const e of p.kept) {
    const layer = layerOf(g, e);
    if (layer === row - 1 && g.dst[e] === token) incoming.push(e);
    if (layer === row && g.src[e] === token) outgoing.push(e);
  }
  const byWeight = (a: number, b: number) => g.weight[b] - g.weight[a];
  return { incoming: incoming.sort(byWeight), outgoing: outgoing.sort(byWeight) };
}

/** The edge layer an edge index belongs to (binary search over the offsets). */
export function layerOf(g: GraphData, edge: number): number {
  let lo = 0;
  let hi = g.layers.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (g.offsets[mid] <= edge) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
