/** Heads (``HeadScoresView.to_dict()``): per pattern a layers × heads grid of scores, z-scores against the
 * baseline, the significant heads outlined; a cell opens that head's attention map. */

import type { Painter } from "../paint";
import { color, fmt } from "../scale";
import type { Table } from "./table";

/** The parts of a HeadScoresView the page reads (the server's heads job result). */
export interface HeadsData {
  model: string;
  baseline: string | null;
  patterns: string[];
  shown: string[];
  mixed_threshold: number;
  z_significant: number;
  layers: number[];
  n_heads: number;
  top: Record<string, { layer: number; head: number; score: number; label: string; z?: number; baseline?: number }[]>;
  grid: {
    scores: Record<string, number[][]>; // pattern -> [layer row, head]
    baseline: Record<string, number[][]>; // empty without a baseline
    z: Record<string, number[][]>;
    labels: string[][];
  };
}

export interface HeadCell {
  pattern: string;
  row: number; // index into ``layers``
  head: number;
}

export interface HeadsLayout {
  width: number;
  height: number;
  cell: number;
  gridWidth: number; // one pattern's grid
  gap: number;
  left: number;
  top: number;
  patterns: string[];
  rows: number;
  heads: number;
}

const LABEL_W = 36;
const TITLE_H = 32;

/** One grid per shown pattern side by side, square cells sized to fit ``width`` (8 to 28 px). */
export function headsLayout(v: HeadsData, width: number): HeadsLayout {
  const patterns = v.shown.length ? v.shown : v.patterns;
  const gap = 16;
  const fit = (width - LABEL_W - gap * (patterns.length - 1)) / Math.max(1, patterns.length * v.n_heads);
  const cell = Math.max(8, Math.min(28, Math.floor(fit)));
  const gridWidth = cell * v.n_heads;
  return { width: LABEL_W + patterns.length * gridWidth + (patterns.length - 1) * gap + 8,
    height: TITLE_H + cell * v.layers.length + 24, cell, gridWidth, gap, left: LABEL_W, top: TITLE_H, patterns,
    rows: v.layers.length, heads: v.n_heads };
}

/** Top-left corner of a cell. */
export function cellOrigin(lay: HeadsLayout, c: HeadCell): { x: number; y: number } {
  const p = lay.patterns.indexOf(c.pattern);
  return { x: lay.left + p * (lay.gridWidth + lay.gap) + c.head * lay.cell, y: lay.top + c.row * lay.cell };
}

/** The cell under a point, or null between grids and outside them. */
export function hitHead(lay: HeadsLayout, x: number, y: number): HeadCell | null {
  const gx = x - lay.left;
  const p = Math.floor(gx / (lay.gridWidth + lay.gap));
  const inGrid = gx - p * (lay.gridWidth + lay.gap);
  const row = Math.floor((y - lay.top) / lay.cell);
  if (gx < 0 || p >= lay.patterns.length || inGrid >= lay.gridWidth || row < 0 || row >= lay.rows) return null;
  return { pattern: lay.patterns[p], row, head: Math.floor(inGrid / lay.cell) };
}

/** Whether a head "has" ``pattern``: score at least the mixed threshold and, with a baseline, z at least z_significant. */
export function significant(v: HeadsData, c: HeadCell): boolean {
  const score = v.grid.scores[c.pattern]?.[c.row]?.[c.head] ?? 0;
  const z = v.grid.z[c.pattern]?.[c.row]?.[c.head];
  return score >= v.mixed_threshold && (z === undefined || z >= v.z_significant);
}

/** What hovering a cell says: the head, its score, and the baseline and z-score when there is a baseline. */
export function describe(v: HeadsData, c: HeadCell): string {
  const score = v.grid.scores[c.pattern][c.row][c.head];
  const base = v.grid.baseline[c.pattern]?.[c.row]?.[c.head];
  const z = v.grid.z[c.pattern]?.[c.row]?.[c.head];
  const extra = z === undefined ? "" : `, baseline ${fmt(base)}, z ${fmt(z)}`;
  return `L${v.layers[c.row]} H${c.head} ${c.pattern}: score ${fmt(score)}${extra} (${v.grid.labels[c.row][c.head]})`;
}

/** Scores on one [0, 1] colour scale; significant heads outlined in black. */
export function drawHeads(p: Painter, v: HeadsData, lay: HeadsLayout): void {
  p.rect(0, 0, lay.width, lay.height, "#fff");
  lay.patterns.forEach((pattern, i) => {
    const x0 = lay.left + i * (lay.gridWidth + lay.gap);
    p.text(x0, 12, pattern.replace(/_/g, " "), { size: 11, weight: "bold" });
    for (let row = 0; row < lay.rows; row++)
      for (let head = 0; head < lay.heads; head++) {
        const c = { pattern, row, head };
        const { x, y } = cellOrigin(lay, c);
        p.rect(x, y, lay.cell, lay.cell, color(v.grid.scores[pattern][row][head], 1), significant(v, c) ? "#000" : "#eee");
      }
    p.text(x0, lay.top - 6, `heads 0–${lay.heads - 1}`, { size: 9, color: "#666" });
  });
  v.layers.forEach((l, row) =>
    p.text(lay.left - 4, lay.top + (row + 0.5) * lay.cell, `L${l}`, { size: 10, color: "#444", align: "end" }));
  p.text(lay.left, lay.height - 8, `colour: score on [0, 1]; outlined: score ≥ ${fmt(v.mixed_threshold)}` +
    (v.baseline ? ` and z ≥ ${fmt(v.z_significant)} against ${v.baseline}` : ""), { size: 10, color: "#666" });
}

/** The best heads per shown pattern. */
export function topTable(v: HeadsData): Table {
  const rows = v.shown.flatMap((pattern) => (v.top[pattern] ?? []).map((t) => [pattern, `L${t.layer}`, `H${t.head}`,
    fmt(t.score), fmt(t.baseline), fmt(t.z), t.label]));
  return { title: `Top heads per pattern (${v.model})`, columns: ["pattern", "layer", "head", "score", "baseline", "z", "label"],
    rows, note: v.baseline ? `z-scores against ${v.baseline}` : "no baseline: scores only" };
}
