/** DOM helpers the pages share: elements, a table view with its export buttons, a canvas drawn through a Painter. */

import { exportButtons, type Draw } from "./export";
import { CanvasPainter } from "./paint";
import { drawTable, tableElement, tableSize, type Table } from "./views/table";

/** A new element with optional text (set as text, never parsed) and class. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

/** ``t`` appended to ``wrap`` as HTML, with PNG/SVG buttons that draw it. */
export function tableView(wrap: HTMLElement, t: Table, name: string): HTMLElement {
  const [width, height] = tableSize(t);
  wrap.append(exportButtons(name, () => ({ draw: (p) => drawTable(p, t), width, height })), tableElement(t));
  return wrap;
}

/** A canvas at the screen's pixel ratio with ``draw`` painted on it. */
export function canvasOf(draw: Draw, width: number, height: number): HTMLCanvasElement {
  const canvas = el("canvas");
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  Object.assign(canvas.style, { width: `${width}px`, height: `${height}px` });
  const ctx = canvas.getContext("2d")!;
  ctx.scale(dpr, dpr);
  draw(new CanvasPainter(ctx));
  return canvas;
}
