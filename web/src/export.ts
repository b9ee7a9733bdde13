/** PNG and SVG export of any view that draws through a Painter. */

import { CanvasPainter, SvgPainter, type Painter } from "./paint";

export type Draw = (p: Painter) => void;

/** The SVG document of a drawing. */
export function svgOf(draw: Draw, width: number, height: number): string {
  const p = new SvgPainter(width, height);
  draw(p);
  return p.toString();
}

/** A PNG of a drawing at ``scale`` × its size (2: sharp in papers). */
export function pngOf(draw: Draw, width: number, height: number, scale = 2): Promise<Blob> {
  const canvas = document.createElement("canvas");
  canvas.width = Math.ceil(width * scale);
  canvas.height = Math.ceil(height * scale);
  const ctx = canvas.getContext("2d")!;
  ctx.scale(scale, scale);
  draw(new CanvasPainter(ctx));
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("the browser could not encode the PNG"))), "image/png"));
}

/** Save ``blob`` as ``name`` through the browser's download (no server round trip). */
export function download(blob: Blob, name: string): void {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

/** Export buttons for a view: PNG and SVG of what ``current()`` returns when clicked. */
export function exportButtons(name: string, current: () => { draw: Draw; width: number; height: number }): HTMLElement {
  const bar = document.createElement("span");
  bar.className = "export";
  for (const kind of ["png", "svg"] as const) {
    const b = bar.appendChild(document.createElement("button"));
    b.textContent = kind.toUpperCase();
    b.title = `Download this view as ${kind.toUpperCase()}`;
    b.dataset.export = kind;
    b.onclick = async () => {
      const { draw, width, height } = current();
      const blob = kind === "svg" ? new Blob([svgOf(draw, width, height)], { type: "image/svg+xml" })
        : await pngOf(draw, width, height);
      download(blob, `${name}.${kind}`);
    };
  }
  return bar;
}
