/** Per-head attention maps on one shared colour scale, with decoded tokens on the axes and values on hover. */

import type { Painter } from "../paint";
import { color, fmt } from "../scale";
import { tokenLabel } from "../graph/render";

export interface MapsInput {
  tokens: string[];
  layer: number;
  heads: (number | null)[]; // null: summed over heads
  values: number[][][]; // [map, q, k]
  vmax: number;
}

export interface MapsLayout {
  width: number;
  height: number;
  columns: number;
  cell: number; // px per (binned) cell
  bin: number; // tokens per cell (1 unless the prompt is longer than maxCells)
  cells: number; // cells per axis
  panel: number; // px per map side
  label: number; // px reserved for token labels left of / above each map
  gap: number;
  title: number;
}

/**
 * A grid of maps fitting ``width``: square panels, at most ``maxCells`` cells per axis (longer prompts binned),
 * room for token labels of up to ``labelChars`` characters when the prompt is short enough to label.
 */
export function mapsLayout(nMaps: number, nTokens: number, width: number, maxCells = 256, labelChars = 10): MapsLayout {
  const bin = Math.max(1, Math.ceil(nTokens / maxCells));
  const cells = Math.ceil(nTokens / bin);
  const columns = Math.max(1, Math.min(nMaps, Math.floor(width / 260) || 1));
  const label = cells <= 64 ? Math.min(70, 12 + 6 * Math.min(10, labelChars)) : 24; // ~6 px per 10-px character
  const gap = 18;
  const title = 20;
  const panel = Math.max(cells, Math.floor((width - columns * (label + gap)) / columns));
  const cell = panel / cells;
  const rows = Math.ceil(nMaps / columns);
  return { width, height: rows * (panel + label + title + gap) + 40, columns, cell, bin, cells, panel, label, gap, title };
}

/** Top-left corner of map ``i``'s panel (its cells, past the labels). */
export function panelOrigin(lay: MapsLayout, i: number): [number, number] {
  const col = i % lay.columns;
  const row = Math.floor(i / lay.columns);
  return [col * (lay.panel + lay.label + lay.gap) + lay.label, 40 + row * (lay.panel + lay.label + lay.title + lay.gap) + lay.title + lay.label];
}

/** The centre of map ``i``'s cell holding (``q``, ``k``), in the drawing's pixels (the inverse of ``hitCell``). */
export function cellCentre(lay: MapsLayout, i: number, q: number, k: number): { x: number; y: number } {
  const [x0, y0] = panelOrigin(lay, i);
  return { x: x0 + (Math.floor(k / lay.bin) + 0.5) * lay.cell, y: y0 + (Math.floor(q / lay.bin) + 0.5) * lay.cell };
}

/** The map and (binned) cell under pixel (``px``, ``py``), or null. */
export function hitCell(lay: MapsLayout, nMaps: number, px: number, py: number): { map: number; q: number; k: number } | null {
  for (let i = 0; i < nMaps; i++) {
    const [x0, y0] = panelOrigin(lay, i);
    if (px >= x0 && px < x0 + lay.panel && py >= y0 && py < y0 + lay.panel)
      return { map: i, q: Math.floor((py - y0) / lay.cell) * lay.bin, k: Math.floor((px - x0) / lay.cell) * lay.bin };
  }
  return null;
}

/** The largest value of the ``bin`` × ``bin`` block at (``q``, ``k``): binned maps show each block's peak. */
export function blockMax(values: number[][], q: number, k: number, bin: number): number {
  let m = 0;
  for (let i = q; i < Math.min(values.length, q + bin); i++)
    for (let j = k; j < Math.min(values[i].length, k + bin); j++) if (values[i][j] > m) m = values[i][j];
  return m;
}

export function drawMaps(p: Painter, m: MapsInput, lay: MapsLayout): void {
  p.rect(0, 0, lay.width, lay.height, "#fff");
  const scale = lay.bin > 1 ? `; each cell is the peak of ${lay.bin} × ${lay.bin} tokens` : "";
  p.text(0, 14, `layer ${m.layer}: attention weights on one scale, 0 to ${fmt(m.vmax)}${scale}`, { size: 12, weight: "bold" });
  drawLegend(p, lay.width - 170, 8, m.vmax);
  m.values.forEach((map, i) => {
    const [x0, y0] = panelOrigin(lay, i);
    const head = m.heads[i];
    p.text(x0, y0 - lay.label - 8, head === null ? "all heads (sum)" : `head ${head}`, { size: 11, weight: "bold" });
    for (let a = 0; a < lay.cells; a++)
      for (let b = 0; b <= a; b++) {
        const v = blockMax(map, a * lay.bin, b * lay.bin, lay.bin);
        if (v > 0) p.rect(x0 + b * lay.cell, y0 + a * lay.cell, lay.cell + 0.3, lay.cell + 0.3, color(v, m.vmax));
      }
    p.rect(x0, y0, lay.panel, 0.8, "#ccc");
    p.rect(x0, y0 + lay.panel, lay.panel, 0.8, "#ccc");
    if (lay.bin === 1 && lay.cell >= 7) {
      m.tokens.forEach((t, j) => {
        const c = (j + 0.5) * lay.cell;
        p.text(x0 - 4, y0 + c, tokenLabel(t, 10), { align: "end", size: Math.min(10, lay.cell), color: "#333" });
        p.text(x0 + c, y0 - 4, tokenLabel(t, 10), { rotate: -60, size: Math.min(10, lay.cell), color: "#333" });
      });
    }
  });
}

function drawLegend(p: Painter, x: number, y: number, vmax: number): void {
  for (let i = 0; i < 100; i++) p.rect(x + i * 1.2, y, 1.3, 10, color(i / 99, 1));
  p.text(x - 4, y + 5, "0", { align: "end", size: 10 });
  p.text(x + 124, y + 5, fmt(vmax), { size: 10 });
}
