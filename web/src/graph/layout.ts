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
 * Linear in the kept edges (``prune`` groups them by the row they enter, so bins are per row).
 */
export function drawList(g: GraphData, p: Pruned, layout: GraphLayout, maxEdges = 4000, minPx = 2): DrawList {
  const { left, right } = layout;
  const xOf = tokenXs(layout);
  const tw = tokenWidth(layout);
  const binTokens = tw < minPx ? minPx / tw : 0; // tokens per bin (0: no aggregation)
  const nBins = binTokens ? Math.ceil(layout.tokens / binTokens) + 1 : 0;
  const bins = new Map<number, number>(); // (row gap, src bin, dst bin) -> slot, for the current upper row
  const slotEdge = new Int32Array(p.kept.length);
  const slotW = new Float32Array(p.kept.length);
  let slots = 0;
  let culled = 0;
  let merged = 0;
  let row = -1;
  for (let i = 0; i < p.kept.length; i++) {
    const e = p.kept[i];
    const xs = xOf[g.src[e]];
    const xd = xOf[g.dst[e]];
    if ((xs < left && xd < left) || (xs > right && xd > right)) {
      culled++;
      continue;
    }
    const w = g.weight[e];
    if (binTokens > 0) {
      if (g.dstRow[e] !== row) {
        row = g.dstRow[e];
        bins.clear();
      }
      const key = ((g.dstRow[e] - g.srcRow[e]) * nBins + Math.floor(g.src[e] / binTokens)) * nBins +
        Math.floor(g.dst[e] / binTokens);
      const slot = bins.get(key);
      if (slot !== undefined) {
        merged++;
        if (w > slotW[slot]) {
          slotW[slot] = w;
          slotEdge[slot] = e;
        }
        continue;
      }
      bins.set(key, slots);
    }
    slotEdge[slots] = e;
    slotW[slots++] = w;
  }
  const cutoff = slots > maxEdges ? slotW.slice(0, slots).sort()[slots - maxEdges] : -Infinity;
  let ties = slots > maxEdges ? maxEdges - countAbove(slotW, slots, cutoff) : 0; // slots at the cutoff we may keep
  const count = Math.min(slots, maxEdges);
  const out: DrawList = { xy: new Float32Array(4 * count), weight: new Float32Array(count), kind: new Uint8Array(count),
    count, culled, merged, dropped: slots - count };
  const yOf = Float32Array.from({ length: layout.rows }, (_, r) => layout.y(r));
  for (let s = 0, i = 0; s < slots && i < count; s++) {
    const w = slotW[s];
    if (w < cutoff || (w === cutoff && ties-- <= 0)) continue;
    const e = slotEdge[s];
    out.xy[4 * i] = xOf[g.src[e]];
    out.xy[4 * i + 1] = yOf[g.srcRow[e]];
    out.xy[4 * i + 2] = xOf[g.dst[e]];
    out.xy[4 * i + 3] = yOf[g.dstRow[e]];
    out.weight[i] = w;
    out.kind[i++] = g.kind[e];
  }
  return out;
}

function countAbove(w: Float32Array, n: number, cutoff: number): number {
  let c = 0;
  for (let i = 0; i < n; i++) if (w[i] > cutoff) c++;
  return c;
}

/** Each token's centre x at this zoom. */
function tokenXs(layout: GraphLayout): Float32Array {
  return Float32Array.from({ length: layout.tokens }, (_, t) => layout.x(t + 0.5));
}

/**
 * Centres of the reached nodes on screen (x, y pairs), one per ``minPx`` pixel column and row when tokens are
 * narrower than that, so a 2,048-token graph draws at most a few hundred dots per row.
 */
export function nodeDots(reached: Uint8Array, layout: GraphLayout, minPx = 2): { xy: Float32Array; count: number } {
  const T = layout.tokens;
  const t0 = Math.max(0, Math.floor(layout.view.t0));
  const t1 = Math.min(T, Math.ceil(layout.view.t1));
  const xOf = tokenXs(layout);
  const xy: number[] = [];
  for (let r = 0; r < layout.rows; r++) {
    const y = layout.y(r);
    let lastBin = -Infinity;
    for (let t = t0; t < t1; t++) {
      if (!reached[r * T + t]) continue;
      const bin = Math.floor(xOf[t] / minPx);
      if (bin === lastBin) continue;
      lastBin = bin;
      xy.push(xOf[t], y);
    }
  }
  return { xy: Float32Array.from(xy), count: xy.length / 2 };
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
