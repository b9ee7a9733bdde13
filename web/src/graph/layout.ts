/** Where the graph's nodes and edges go on screen: zoomed token range, culling and aggregation of dense edges. */

import { linear, type Linear } from "../scale";
import type { GraphData, Pruned } from "./model";

export interface Viewport {
  t0: number; // first visible token (may be fractional when zoomed)
  t1: number; // one past the last visible token
}

export interface GraphLayout {
  width: number;
  height: number;
  left: number; // plot area in px
  right: number;
  top: number;
  bottom: number;
  rows: number; // row 0: the embeddings, at the bottom
  tokens: number;
  view: Viewport;
  x: Linear; // token index -> px (node centres sit at token + 0.5)
  y: Linear; // row -> px (row 0 at the bottom)
}

export const MARGIN = { left: 56, right: 16, top: 28, bottom: 90 };

/** The layout for ``nTokens`` × ``rows`` in a ``width`` × ``height`` box, showing tokens ``view`` (all by default). */
export function graphLayout(nTokens: number, rows: number, width: number, height: number,
  view: Viewport = { t0: 0, t1: nTokens }): GraphLayout {
  const left = MARGIN.left;
  const right = Math.max(left + 1, width - MARGIN.right);
  const top = MARGIN.top;
  const bottom = Math.max(top + 1, height - MARGIN.bottom);
  return { width, height, left, right, top, bottom, rows, tokens: nTokens, view,
    x: linear([view.t0, view.t1], [left, right]), y: linear([0, Math.max(1, rows - 1)], [bottom, top]) };
}

/** Pixels per token at this zoom. */
export function tokenWidth(layout: GraphLayout): number {
  return (layout.right - layout.left) / Math.max(1e-9, layout.view.t1 - layout.view.t0);
}

/** The viewport zoomed by ``factor`` (> 1 zooms in) about token ``at``, kept inside ``[0, nTokens]``. */
export function zoom(view: Viewport, factor: number, at: number, nTokens: number): Viewport {
  const span = Math.min(nTokens, Math.max(4, (view.t1 - view.t0) / factor));
  const frac = (at - view.t0) / Math.max(1e-9, view.t1 - view.t0);
  let t0 = at - frac * span;
  t0 = Math.min(Math.max(0, t0), nTokens - span);
  return { t0, t1: t0 + span };
}

/** The viewport moved by ``dt`` tokens, kept inside ``[0, nTokens]``. */
export function pan(view: Viewport, dt: number, nTokens: number): Viewport {
  const span = view.t1 - view.t0;
  const t0 = Math.min(Math.max(0, view.t0 + dt), nTokens - span);
  return { t0, t1: t0 + span };
}

/** Segments to draw: ``xy`` holds x1, y1, x2, y2 per segment; ``weight`` and ``kind`` per segment. */
export interface DrawList {
  xy: Float32Array;
  weight: Float32Array;
  kind: Uint8Array;
  count: number;
  culled: number; // kept edges entirely outside the visible token range
  merged: number; // edges folded into another by aggregation (the strongest of each pixel bin is drawn)
  dropped: number; // weakest edges left out past ``maxEdges``
}

/**
 * The kept edges as screen segments. Edges wholly off-screen are culled; when tokens are narrower than
 * ``minPx`` pixels, edges that share both rows and both end bins are merged into one carrying the largest weight;
 * past ``maxEdges`` only the strongest are kept. Each count is reported so the page can say what it left out.
 */
export function drawList(g: GraphData, p: Pruned, layout: GraphLayout, maxEdges = 20000, minPx = 2): DrawList {
  const { x, y, left, right } = layout;
  const tw = tokenWidth(layout);
  const binTokens = tw < minPx ? minPx / tw : 0; // tokens per bin (0: no aggregation)
  const bins = new Map<number, number>(); // (layer, src bin, dst bin) -> slot
  const slotEdge: number[] = [];
  const slotW: number[] = [];
  let culled = 0;
  let merged = 0;
  for (const e of p.kept) {
    const xs = x(g.src[e] + 0.5);
    const xd = x(g.dst[e] + 0.5);
    if (Math.max(xs, xd) < left || Math.min(xs, xd) > right) {
      culled++;
      continue;
    }
    const w = g.weight[e];
    if (binTokens > 0) {
      const key = ((g.dstRow[e] * 1024 + g.srcRow[e]) * 65536 + Math.floor(g.src[e] / binTokens)) * 65536 +
        Math.floor(g.dst[e] / binTokens);
      const slot = bins.get(key);
      if (slot !== undefined) {
        merged++;
        if (w > slotW[slot]) [slotW[slot], slotEdge[slot]] = [w, e];
        continue;
      }
      bins.set(key, slotEdge.length);
    }
    slotEdge.push(e);
    slotW.push(w);
  }
  let order = slotEdge.map((_, i) => i);
  let dropped = 0;
  if (order.length > maxEdges) {
    order.sort((a, b) => slotW[b] - slotW[a]);
    dropped = order.length - maxEdges;
    order = order.slice(0, maxEdges);
  }
  const count = order.length;
  const out: DrawList = { xy: new Float32Array(4 * count), weight: new Float32Array(count), kind: new Uint8Array(count),
    count, culled, merged, dropped };
  order.forEach((slot, i) => {
    const e = slotEdge[slot];
    out.xy.set([x(g.src[e] + 0.5), y(g.srcRow[e]), x(g.dst[e] + 0.5), y(g.dstRow[e])], 4 * i);
    out.weight[i] = slotW[slot];
    out.kind[i] = g.kind[e];
  });
  return out;
}

/** The node under pixel (``px``, ``py``), if one lies within ``radius`` px of it. */
export function hitNode(layout: GraphLayout, px: number, py: number, radius = 8): { row: number; token: number } | null {
  const token = Math.floor(layout.x.invert(px));
  const row = Math.round(layout.y.invert(py));
  if (token < 0 || token >= layout.tokens || row < 0 || row >= layout.rows) return null;
  const dx = layout.x(token + 0.5) - px;
  const dy = layout.y(row) - py;
  const r = Math.max(radius, tokenWidth(layout) / 2);
  return Math.abs(dx) <= r && Math.abs(dy) <= radius ? { row, token } : null;
}
