/** Tables (convergence, lens) as data: shown as HTML, drawn through a Painter for PNG and SVG export. */

import type { Painter } from "../paint";
import { color } from "../scale";

export interface Table {
  title: string;
  columns: string[];
  rows: string[][];
  shade?: (number | null)[]; // per row, a value in [0, 1] that tints the row (e.g. its share of the mass)
  note?: string;
}

const ROW_PX = 20;
const CHAR_PX = 7;

/** Pixel widths of the columns: the longest cell (or header) of each, in characters, times a fixed advance. */
export function columnWidths(t: Table): number[] {
  return t.columns.map((c, i) => CHAR_PX * Math.max(c.length, ...t.rows.map((r) => (r[i] ?? "").length)) + 16);
}

export function tableSize(t: Table): [number, number] {
  return [columnWidths(t).reduce((a, b) => a + b, 0) + 20, (t.rows.length + 2) * ROW_PX + (t.note ? ROW_PX : 0) + 20];
}

export function drawTable(p: Painter, t: Table): void {
  const [w, h] = tableSize(t);
  const widths = columnWidths(t);
  p.rect(0, 0, w, h, "#fff");
  p.text(10, 14, t.title, { size: 12, weight: "bold" });
  const row = (cells: string[], y: number, bold: boolean) => {
    let x = 10;
    cells.forEach((c, i) => {
      p.text(x + 4, y + ROW_PX / 2, c, { size: 11, weight: bold ? "bold" : "normal", color: "#222" });
      x += widths[i];
    });
  };
  row(t.columns, 28, true);
  t.rows.forEach((cells, i) => {
    const y = 28 + (i + 1) * ROW_PX;
    const s = t.shade?.[i];
    if (s !== null && s !== undefined) p.rect(10, y, w - 20, ROW_PX, color(0.05 + 0.5 * s, 1));
    row(cells, y, false);
  });
  if (t.note) p.text(10, 28 + (t.rows.length + 1.5) * ROW_PX, t.note, { size: 10, color: "#666" });
}

/** The table as an HTML element (text set through textContent: tokens are never parsed as markup). */
export function tableElement(t: Table): HTMLElement {
  const wrap = document.createElement("div");
  wrap.className = "table";
  const h = document.createElement("h3");
  h.textContent = t.title;
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const c of t.columns) head.appendChild(document.createElement("th")).textContent = c;
  const body = table.createTBody();
  t.rows.forEach((cells, i) => {
    const tr = body.insertRow();
    const s = t.shade?.[i];
    if (s !== null && s !== undefined) tr.style.background = color(0.05 + 0.5 * s, 1);
    for (const c of cells) tr.insertCell().textContent = c;
  });
  wrap.append(h, table);
  if (t.note) wrap.appendChild(document.createElement("p")).textContent = t.note;
  return wrap;
}
