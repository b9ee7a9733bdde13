/** Draws the pruned graph through a Painter: edges coloured by weight, reached nodes, layer and token labels. */

import type { Painter } from "../paint";
import { color, fmt } from "../scale";
import { nodeDots, tokenWidth, type DrawList, type GraphLayout } from "./layout";
import { RESIDUAL, type GraphData, type Pruned } from "./model";

export const WEIGHT_BUCKETS = 12; // edges are batched into this many colour/width steps (one path each)

export interface Selection {
  row: number;
  token: number;
}

/** A token as a short label: whitespace made visible, long ones cut. */
export function tokenLabel(token: string, max = 12): string {
  const s = token.replace(/\n/g, "↵").replace(/\t/g, "⇥").replace(/^ /, "·");
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** Non-residual segments of ``list`` grouped into weight buckets on ``[threshold, 1]``, weakest bucket first. */
export function bucketize(list: DrawList, threshold: number, buckets = WEIGHT_BUCKETS): number[][] {
  const out: number[][] = Array.from({ length: buckets }, () => []);
  const span = Math.max(1e-9, 1 - threshold);
  for (let i = 0; i < list.count; i++) {
    if (list.kind[i] === RESIDUAL) continue;
    const t = (list.weight[i] - threshold) / span;
    out[Math.min(buckets - 1, Math.max(0, Math.floor(t * buckets)))].push(i);
  }
  return out;
}

export function drawGraph(p: Painter, g: GraphData, pruned: Pruned, layout: GraphLayout, list: DrawList,
  selected: Selection | null): void {
  const { x, y } = layout;
  p.rect(0, 0, layout.width, layout.height, "#fff");
  // row guides and labels
  for (let row = 0; row < layout.rows; row++) {
    p.line(layout.left, y(row), layout.right, y(row), "#eee", 1);
    p.text(layout.left - 8, y(row), g.rows[row].label, { align: "end", size: 10, color: "#666" });
  }
  // residual edges in grey, then the others, weakest first so the strong ones lie on top
  const residual = [...list.kind.keys()].filter((i) => list.kind[i] === RESIDUAL);
  if (residual.length) p.lines(gather(list, residual), residual.length, "#999", 1.2, 0.6);
  bucketize(list, pruned.threshold).forEach((members, b) => {
    if (!members.length) return;
    const mid = pruned.threshold + ((b + 0.5) / WEIGHT_BUCKETS) * (1 - pruned.threshold);
    p.lines(gather(list, members), members.length, color(0.15 + 0.85 * mid, 1), 0.6 + 2.4 * mid, 0.35 + 0.6 * mid);
  });
  // reached nodes
  const T = g.tokens.length;
  const r = Math.max(1, Math.min(4, tokenWidth(layout) / 3));
  const [t0, t1] = [Math.max(0, Math.floor(layout.view.t0)), Math.min(T, Math.ceil(layout.view.t1))];
  const dots = nodeDots(pruned.reached, layout);
  p.dots(dots.xy, dots.count, r, "#555");
  p.circle(x(g.position + 0.5), y(layout.rows - 1), r + 2, "#b2182b", "#fff");
  if (selected) p.circle(x(selected.token + 0.5), y(selected.row), r + 3, "none", "#2166ac");
  drawTokens(p, g, layout, t0, t1);
  const shown = `${list.count} edges` + (list.merged ? `, ${list.merged} merged` : "") +
    (list.dropped ? `, ${list.dropped} weakest not drawn` : "") + (list.culled ? `, ${list.culled} off-screen` : "");
  p.text(layout.left, 12, `${g.measure} ≥ ${fmt(pruned.threshold)} reaching “${tokenLabel(g.tokens[g.position])}” ` +
    `(position ${g.position}) — ${shown}`, { size: 11, color: "#333" });
  p.text(layout.right, 12, "grey: residual stream", { align: "end", size: 10, color: "#888" });
}

/** The segments ``members`` of ``list`` as one packed x1, y1, x2, y2 array. */
function gather(list: DrawList, members: number[]): Float32Array {
  const xy = new Float32Array(4 * members.length);
  members.forEach((i, j) => xy.set(list.xy.subarray(4 * i, 4 * i + 4), 4 * j));
  return xy;
}

/** Token labels under the bottom row: every token when they fit, else every k-th. */
function drawTokens(p: Painter, g: GraphData, layout: GraphLayout, t0: number, t1: number): void {
  const step = Math.max(1, Math.ceil(11 / tokenWidth(layout)));
  for (let t = Math.ceil(t0 / step) * step; t < t1; t += step) {
    const label = step === 1 ? tokenLabel(g.tokens[t]) : `${t}`;
    p.text(layout.x(t + 0.5), layout.bottom + 10, label, { rotate: -60, align: "end", size: 10,
      color: t === g.position ? "#b2182b" : "#333" });
  }
}
