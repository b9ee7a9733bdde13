/** One drawing interface with two backends, a canvas and an SVG document, so every view exports as PNG and SVG. */

export interface TextStyle {
  size?: number; // px
  color?: string;
  align?: "start" | "middle" | "end";
  baseline?: "top" | "middle" | "bottom";
  rotate?: number; // degrees, about the anchor
  weight?: "normal" | "bold";
}

export interface Painter {
  rect(x: number, y: number, w: number, h: number, fill: string, stroke?: string): void;
  line(x1: number, y1: number, x2: number, y2: number, color: string, width: number, alpha?: number): void;
  /** Many segments in one style: ``xy`` holds x1, y1, x2, y2 per segment (one canvas path, so thousands stay fast). */
  lines(xy: ArrayLike<number>, count: number, color: string, width: number, alpha?: number): void;
  circle(cx: number, cy: number, r: number, fill: string, stroke?: string): void;
  /** Many filled dots of one radius and ``#rrggbb`` colour: ``xy`` holds x, y per dot. */
  dots(xy: ArrayLike<number>, count: number, r: number, fill: string): void;
  text(x: number, y: number, s: string, style?: TextStyle): void;
  /** A filled polygon (``xy``: x, y per vertex), e.g. a confidence band. */
  polygon(xy: ArrayLike<number>, fill: string, alpha?: number): void;
}

const RASTER_DOTS = 4000; // more dots than this are written as pixels: a path of that many arcs is slow to fill

/** ``#rgb`` or ``#rrggbb`` as [r, g, b]. */
export function hexRgb(hex: string): [number, number, number] {
  const h = hex.replace("#", "");
  const full = h.length === 3 ? [...h].map((ch) => ch + ch).join("") : h;
  return [0, 2, 4].map((i) => parseInt(full.slice(i, i + 2), 16)) as [number, number, number];
}

export const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";

const CANVAS_ALIGN = { start: "left", middle: "center", end: "right" } as const;
const CANVAS_BASELINE = { top: "top", middle: "middle", bottom: "alphabetic" } as const;

/** Draws on a 2D canvas context. */
export class CanvasPainter implements Painter {
  constructor(private readonly ctx: CanvasRenderingContext2D) {}

  rect(x: number, y: number, w: number, h: number, fill: string, stroke?: string): void {
    this.ctx.fillStyle = fill;
    this.ctx.fillRect(x, y, w, h);
    if (stroke) {
      this.ctx.strokeStyle = stroke;
      this.ctx.lineWidth = 1;
      this.ctx.strokeRect(x + 0.5, y + 0.5, w - 1, h - 1);
    }
  }

  line(x1: number, y1: number, x2: number, y2: number, color: string, width: number, alpha = 1): void {
    const c = this.ctx;
    c.globalAlpha = alpha;
    c.strokeStyle = color;
    c.lineWidth = width;
    c.beginPath();
    c.moveTo(x1, y1);
    c.lineTo(x2, y2);
    c.stroke();
    c.globalAlpha = 1;
  }

  lines(xy: ArrayLike<number>, count: number, color: string, width: number, alpha = 1): void {
    const c = this.ctx;
    c.globalAlpha = alpha;
    c.strokeStyle = color;
    c.lineWidth = width;
    c.beginPath();
    for (let i = 0; i < count; i++) {
      c.moveTo(xy[4 * i], xy[4 * i + 1]);
      c.lineTo(xy[4 * i + 2], xy[4 * i + 3]);
    }
    c.stroke();
    c.globalAlpha = 1;
  }

  dots(xy: ArrayLike<number>, count: number, r: number, fill: string): void {
    const c = this.ctx;
    if (count > RASTER_DOTS) return this.rasterDots(xy, count, r, fill);
    c.fillStyle = fill;
    c.beginPath();
    for (let i = 0; i < count; i++) {
      c.moveTo(xy[2 * i] + r, xy[2 * i + 1]);
      c.arc(xy[2 * i], xy[2 * i + 1], r, 0, 2 * Math.PI);
    }
    c.fill();
  }

  /** Tens of thousands of dots as square pixel blocks written into an image, then composited in one draw. */
  private rasterDots(xy: ArrayLike<number>, count: number, r: number, fill: string): void {
    const c = this.ctx;
    const { width, height } = c.canvas;
    const m = c.getTransform();
    const image = new ImageData(width, height);
    const px = new Uint32Array(image.data.buffer);
    const [red, green, blue] = hexRgb(fill);
    const value = (255 << 24) | (blue << 16) | (green << 8) | red; // little-endian RGBA
    const half = Math.max(1, Math.round(r * m.a));
    for (let i = 0; i < count; i++) {
      const x = Math.round(m.a * xy[2 * i] + m.e);
      const y = Math.round(m.d * xy[2 * i + 1] + m.f);
      for (let yy = Math.max(0, y - half); yy < Math.min(height, y + half); yy++)
        px.fill(value, yy * width + Math.max(0, x - half), yy * width + Math.min(width, x + half));
    }
    const layer = document.createElement("canvas");
    layer.width = width;
    layer.height = height;
    layer.getContext("2d")!.putImageData(image, 0, 0);
    c.save();
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.drawImage(layer, 0, 0);
    c.restore();
  }

  circle(cx: number, cy: number, r: number, fill: string, stroke?: string): void {
    const c = this.ctx;
    c.beginPath();
    c.arc(cx, cy, r, 0, 2 * Math.PI);
    if (fill !== "none") {
      c.fillStyle = fill;
      c.fill();
    }
    if (stroke) {
      c.strokeStyle = stroke;
      c.lineWidth = 1.5;
      c.stroke();
    }
  }

  polygon(xy: ArrayLike<number>, fill: string, alpha = 1): void {
    const c = this.ctx;
    c.globalAlpha = alpha;
    c.fillStyle = fill;
    c.beginPath();
    for (let i = 0; i < xy.length; i += 2) (i ? c.lineTo : c.moveTo).call(c, xy[i], xy[i + 1]);
    c.closePath();
    c.fill();
    c.globalAlpha = 1;
  }

  text(x: number, y: number, s: string, style: TextStyle = {}): void {
    const c = this.ctx;
    c.save();
    c.font = `${style.weight ?? "normal"} ${style.size ?? 11}px ${FONT}`;
    c.fillStyle = style.color ?? "#222";
    c.textAlign = CANVAS_ALIGN[style.align ?? "start"];
    c.textBaseline = CANVAS_BASELINE[style.baseline ?? "middle"];
    c.translate(x, y);
    if (style.rotate) c.rotate((style.rotate * Math.PI) / 180);
    c.fillText(s, 0, 0);
    c.restore();
  }
}

/** XML-escaped text for an SVG document. */
export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (ch) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[ch]!);
}

const n = (v: number) => Number(v.toFixed(2)).toString();
const SVG_BASELINE = { top: "hanging", middle: "central", bottom: "alphabetic" } as const;

/** Builds a standalone SVG document (no external reference: fonts are generic families). */
export class SvgPainter implements Painter {
  private readonly parts: string[] = [];

  constructor(readonly width: number, readonly height: number) {}

  rect(x: number, y: number, w: number, h: number, fill: string, stroke?: string): void {
    const s = stroke ? ` stroke="${stroke}"` : "";
    this.parts.push(`<rect x="${n(x)}" y="${n(y)}" width="${n(w)}" height="${n(h)}" fill="${fill}"${s}/>`);
  }

  line(x1: number, y1: number, x2: number, y2: number, color: string, width: number, alpha = 1): void {
    const a = alpha < 1 ? ` stroke-opacity="${n(alpha)}"` : "";
    this.parts.push(`<line x1="${n(x1)}" y1="${n(y1)}" x2="${n(x2)}" y2="${n(y2)}" stroke="${color}" stroke-width="${n(width)}"${a}/>`);
  }

  lines(xy: ArrayLike<number>, count: number, color: string, width: number, alpha = 1): void {
    for (let i = 0; i < count; i++) this.line(xy[4 * i], xy[4 * i + 1], xy[4 * i + 2], xy[4 * i + 3], color, width, alpha);
  }

  dots(xy: ArrayLike<number>, count: number, r: number, fill: string): void {
    for (let i = 0; i < count; i++) this.circle(xy[2 * i], xy[2 * i + 1], r, fill);
  }

  circle(cx: number, cy: number, r: number, fill: string, stroke?: string): void {
    const s = stroke ? ` stroke="${stroke}" stroke-width="1.5"` : "";
    this.parts.push(`<circle cx="${n(cx)}" cy="${n(cy)}" r="${n(r)}" fill="${fill}"${s}/>`);
  }

  polygon(xy: ArrayLike<number>, fill: string, alpha = 1): void {
    const pts = Array.from({ length: xy.length / 2 }, (_, i) => `${n(xy[2 * i])},${n(xy[2 * i + 1])}`).join(" ");
    const a = alpha < 1 ? ` fill-opacity="${n(alpha)}"` : "";
    this.parts.push(`<polygon points="${pts}" fill="${fill}"${a}/>`);
  }

  text(x: number, y: number, s: string, style: TextStyle = {}): void {
    const rot = style.rotate ? ` transform="rotate(${n(style.rotate)} ${n(x)} ${n(y)})"` : "";
    const bold = style.weight === "bold" ? ` font-weight="bold"` : "";
    this.parts.push(`<text x="${n(x)}" y="${n(y)}" font-size="${style.size ?? 11}" fill="${style.color ?? "#222"}"` +
      ` text-anchor="${style.align ?? "start"}" dominant-baseline="${SVG_BASELINE[style.baseline ?? "middle"]}"` +
      `${bold}${rot} xml:space="preserve">${escapeXml(s)}</text>`);
  }

  /** The document: an XML declaration, a white background, then everything drawn, in order. */
  toString(): string {
    return `<?xml version="1.0" encoding="UTF-8"?>\n` +
      `<svg xmlns="http://www.w3.org/2000/svg" width="${this.width}" height="${this.height}" ` +
      `viewBox="0 0 ${this.width} ${this.height}" font-family="${FONT.replace(/'/g, "")}">\n` +
      `<rect width="100%" height="100%" fill="#fff"/>\n${this.parts.join("\n")}\n</svg>\n`;
  }
}
