/** The graph's data: rows × tokens nodes, weighted edges from lower to higher rows, and pruning to the prediction. */

export const ATTENTION = 0;
export const RESIDUAL = 1;
export const MLP = 2;
export const KIND_CODES: Record<string, number> = { attn: ATTENTION, residual: RESIDUAL, mlp: MLP };

/** One row of nodes: the embeddings, or a state of one layer (``mid``: after attention, ``mlp``, ``out``). */
export interface Row {
  label: string;
  layer: number | null; // model layer (null: the embeddings)
  kind: "embed" | "mid" | "mlp" | "out";
}

/** One edge before packing: from token ``src`` on row ``srcRow`` up to token ``dst`` on row ``dstRow``. */
export interface EdgeInput {
  srcRow: number;
  src: number;
  dstRow: number;
  dst: number;
  weight: number;
  kind?: number;
  heads?: number[] | null; // per-head parts of an attention edge
}

/** Edges packed in typed arrays, grouped by the row they enter (``offsets[r]..offsets[r+1]`` enter row r). */
export interface GraphData {
  tokens: string[];
  rows: Row[];
  position: number; // the prediction position: the root is (top row, position)
  measure: string; // what an edge weight is ("attention weight", "route importance")
  srcRow: Int32Array;
  src: Int32Array;
  dstRow: Int32Array;
  dst: Int32Array;
  weight: Float32Array;
  kind: Uint8Array;
  heads: (number[] | null)[];
  offsets: Int32Array;
}

/** The pruned graph: kept edge indices and, per node (``row * nTokens + token``), whether it reaches the root. */
export interface Pruned {
  threshold: number;
  kept: Int32Array;
  reached: Uint8Array;
}

export function buildGraph(init: { tokens: string[]; rows: Row[]; position: number; measure: string },
  edges: EdgeInput[]): GraphData {
  const R = init.rows.length;
  const counts = new Int32Array(R + 1);
  for (const e of edges) {
    if (!(e.srcRow >= 0 && e.srcRow < e.dstRow && e.dstRow < R))
      throw new Error(`edge rows ${e.srcRow} -> ${e.dstRow} must rise within 0..${R - 1}`);
    counts[e.dstRow + 1]++;
  }
  const offsets = new Int32Array(R + 1);
  for (let r = 1; r <= R; r++) offsets[r] = offsets[r - 1] + counts[r];
  const fill = offsets.slice(0, R);
  const n = edges.length;
  const g: GraphData = { ...init, srcRow: new Int32Array(n), src: new Int32Array(n), dstRow: new Int32Array(n),
    dst: new Int32Array(n), weight: new Float32Array(n), kind: new Uint8Array(n), heads: new Array(n).fill(null),
    offsets };
  for (const e of edges) {
    const at = fill[e.dstRow]++;
    g.srcRow[at] = e.srcRow;
    g.src[at] = e.src;
    g.dstRow[at] = e.dstRow;
    g.dst[at] = e.dst;
    g.weight[at] = e.weight;
    g.kind[at] = e.kind ?? ATTENTION;
    g.heads[at] = e.heads ?? null;
  }
  return g;
}

/** One layer's attention map (summed over ``nHeads`` heads, so each row sums to ``nHeads``). */
export interface LayerMap {
  layer: number;
  values: number[][]; // [query, key]
}

/**
 * The attention graph: rows are the embeddings and each layer's output; edge (key j, row i) -> (query q, row i + 1)
 * weighs the head-averaged attention ``values[q][j] / nHeads``, and each token's residual stream is an edge of
 * weight 1 (it always carries the token up). Weights below ``floor`` are left out.
 */
export function attentionGraph(tokens: string[], maps: LayerMap[], nHeads: number, position: number,
  floor = 1e-3): GraphData {
  const edges: EdgeInput[] = [];
  maps.forEach((m, i) => {
    for (let q = 0; q <= position && q < m.values.length; q++) {
      edges.push({ srcRow: i, src: q, dstRow: i + 1, dst: q, weight: 1, kind: RESIDUAL });
      const row = m.values[q];
      for (let k = 0; k <= q && k < row.length; k++) {
        const w = row[k] / nHeads;
        if (w >= floor) edges.push({ srcRow: i, src: k, dstRow: i + 1, dst: q, weight: w });
      }
    }
  });
  const rows: Row[] = [{ label: "emb", layer: null, kind: "embed" },
    ...maps.map((m): Row => ({ label: `L${m.layer}`, layer: m.layer, kind: "out" }))];
  return buildGraph({ tokens, rows, position, measure: "attention weight (head mean)" }, edges);
}

/**
 * Keep the edges of weight >= ``threshold`` that lie on a path into the root, walking down one row at a time: an
 * edge counts when its upper end is already reached (every edge rises, so a row is complete before it is a source).
 * O(edges + rows × tokens).
 */
export function prune(g: GraphData, threshold: number): Pruned {
  const T = g.tokens.length;
  const R = g.rows.length;
  const reached = new Uint8Array(R * T);
  reached[(R - 1) * T + g.position] = 1;
  const kept: number[] = [];
  for (let r = R - 1; r > 0; r--) {
    const up = r * T;
    for (let e = g.offsets[r]; e < g.offsets[r + 1]; e++) {
      if (g.weight[e] >= threshold && reached[up + g.dst[e]]) {
        kept.push(e);
        reached[g.srcRow[e] * T + g.src[e]] = 1;
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
    if (g.dstRow[e] === row && g.dst[e] === token) incoming.push(e);
    if (g.srcRow[e] === row && g.src[e] === token) outgoing.push(e);
  }
  const byWeight = (a: number, b: number) => g.weight[b] - g.weight[a];
  return { incoming: incoming.sort(byWeight), outgoing: outgoing.sort(byWeight) };
}
