/** The routes graph (``RoutesView.to_dict()``: Ferrando & Voita's information-flow routes) as GraphData. */

import { buildGraph, KIND_CODES, type EdgeInput, type GraphData, type Row } from "./model";

export interface RouteEdge {
  source: string;
  target: string;
  kind: "attn" | "mlp" | "residual";
  layer: number;
  importance: number;
  heads: number[] | null;
}

/** The parts of a RoutesView the graph reads. */
export interface RoutesData {
  tokens: string[];
  position: number;
  threshold: number;
  parallel: boolean; // parallel-residual models have no ``mid`` row
  n_layers: number;
  root: string;
  edges: RouteEdge[];
}

/** The rows of an ``n_layers`` model: the embeddings, then per layer mid (sequential models only), mlp, out. */
export function routeRows(nLayers: number, parallel: boolean): Row[] {
  const rows: Row[] = [{ label: "emb", layer: null, kind: "embed" }];
  for (let l = 0; l < nLayers; l++) {
    if (!parallel) rows.push({ label: `L${l} attn`, layer: l, kind: "mid" });
    rows.push({ label: `L${l} mlp`, layer: l, kind: "mlp" }, { label: `L${l}`, layer: l, kind: "out" });
  }
  return rows;
}

/** GraphData of a routes view: every edge is already over the view's threshold and reaches its root. */
export function routesGraph(v: RoutesData): GraphData {
  const rows = routeRows(v.n_layers, v.parallel);
  const perLayer = v.parallel ? 2 : 3;
  const rowOf = (id: string): [number, number] => {
    const a = id.indexOf("/");
    const b = id.indexOf("/", a + 1);
    const kind = id.slice(0, a);
    const layer = Number(id.slice(a + 1, b));
    const position = Number(id.slice(b + 1));
    const within = kind === "embed" ? -1 : v.parallel ? { mlp: 0, out: 1 }[kind] : { mid: 0, mlp: 1, out: 2 }[kind];
    const row = kind === "embed" ? 0 : 1 + perLayer * layer + (within ?? NaN);
    if (!(row >= 0 && row < rows.length) || !(position >= 0 && position < v.tokens.length))
      throw new Error(`unknown routes node ${id}`);
    return [row, position];
  };
  const edges: EdgeInput[] = v.edges.map((e) => {
    const [srcRow, src] = rowOf(e.source);
    const [dstRow, dst] = rowOf(e.target);
    return { srcRow, src, dstRow, dst, weight: e.importance, kind: KIND_CODES[e.kind], heads: e.heads };
  });
  const [rootRow, root] = rowOf(v.root);
  if (rootRow !== rows.length - 1 || root !== v.position) throw new Error(`routes root ${v.root} is not the top row`);
  return buildGraph({ tokens: v.tokens, rows, position: v.position, measure: "route importance" }, edges);
}
