/** The interactive graph: a canvas with a threshold slider, wheel zoom, drag pan and click-to-select. */

import { CanvasPainter } from "../paint";
import type { Draw } from "../export";
import { fmt } from "../scale";
import { drawList, graphLayout, hitNode, pan, zoom, type Viewport } from "./layout";
import { prune, type GraphData, type Pruned } from "./model";
import { drawGraph, type Selection } from "./render";

export interface GraphTimings {
  firstRenderMs: number; // graph built from the data, pruned, laid out and drawn (the script's work)
  firstFrameMs: number; // the same until the browser's next frame (painted); 0 until then
}

export interface GraphViewOptions {
  threshold: number;
  floor: number; // the slider's lowest threshold (what the data was cut at)
  onThreshold(t: number): void; // after the user moves the slider (to keep the URL in step)
  onSelect(s: Selection | null): void;
  selected?: Selection | null;
  height?: number;
}

export class GraphView {
  readonly element: HTMLElement;
  readonly timings: GraphTimings = { firstRenderMs: 0, firstFrameMs: 0 };
  private readonly canvas: HTMLCanvasElement;
  private readonly slider: HTMLInputElement;
  private readonly readout: HTMLElement;
  private pruned: Pruned;
  private view: Viewport;
  private selected: Selection | null;

  constructor(private readonly g: GraphData, private readonly opts: GraphViewOptions, startedAt = performance.now()) {
    this.element = document.createElement("div");
    this.element.className = "graph";
    const controls = this.element.appendChild(document.createElement("div"));
    controls.className = "controls";
    const label = controls.appendChild(document.createElement("label"));
    label.textContent = "threshold ";
    this.slider = label.appendChild(document.createElement("input"));
    Object.assign(this.slider, { type: "range", min: String(opts.floor), max: "1", step: "0.005",
      value: String(opts.threshold) });
    this.slider.name = "threshold";
    this.readout = controls.appendChild(document.createElement("span"));
    this.readout.className = "readout";
    const reset = controls.appendChild(document.createElement("button"));
    reset.textContent = "reset zoom";
    reset.onclick = () => this.setView({ t0: 0, t1: g.tokens.length });
    this.canvas = this.element.appendChild(document.createElement("canvas"));
    this.canvas.setAttribute("aria-label", "attention graph");
    this.view = { t0: 0, t1: g.tokens.length };
    this.selected = opts.selected ?? null;
    this.pruned = prune(g, opts.threshold);
    this.slider.oninput = () => this.setThreshold(Number(this.slider.value));
    this.slider.onchange = () => opts.onThreshold(this.pruned.threshold);
    this.bindPointer();
    new ResizeObserver(() => this.draw()).observe(this.element);
    this.draw();
    this.timings.firstRenderMs = performance.now() - startedAt;
    requestAnimationFrame(() => (this.timings.firstFrameMs = performance.now() - startedAt));
  }

  /** The graph as pruned at the current threshold. */
  get current(): Pruned {
    return this.pruned;
  }

  /** Prune again at ``t`` and redraw. */
  setThreshold(t: number): void {
    this.pruned = prune(this.g, t);
    this.slider.value = String(t);
    this.draw();
  }

  /** Where node (``row``, ``token``) is in page coordinates (for tests and keyboard focus). */
  nodePoint(row: number, token: number): { x: number; y: number } {
    const lay = this.layout();
    const box = this.canvas.getBoundingClientRect();
    return { x: box.left + window.scrollX + lay.x(token + 0.5), y: box.top + window.scrollY + lay.y(row) };
  }

  /** The current drawing at its on-screen size, for export. */
  snapshot(): { draw: Draw; width: number; height: number } {
    const { width, height } = this.size();
    const layout = graphLayout(this.g.tokens.length, this.g.rows.length, width, height, this.view);
    const list = drawList(this.g, this.pruned, layout);
    return { draw: (p) => drawGraph(p, this.g, this.pruned, layout, list, this.selected), width, height };
  }

  private size(): { width: number; height: number } {
    const width = Math.max(320, this.element.clientWidth || 900);
    const height = this.opts.height ?? Math.max(360, Math.min(900, 120 + 22 * (this.g.rows.length)));
    return { width, height };
  }

  private draw(): void {
    const { draw, width, height } = this.snapshot();
    const dpr = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(width * dpr) || this.canvas.height !== Math.round(height * dpr)) {
      this.canvas.width = Math.round(width * dpr);
      this.canvas.height = Math.round(height * dpr);
      this.canvas.style.width = `${width}px`;
      this.canvas.style.height = `${height}px`;
    }
    const ctx = this.canvas.getContext("2d")!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    draw(new CanvasPainter(ctx));
    const reached = this.pruned.reached.reduce((a, b) => a + b, 0);
    this.readout.textContent = ` ${fmt(this.pruned.threshold)} · ${this.pruned.kept.length} edges, ${reached} nodes reach the prediction`;
  }

  private setView(v: Viewport): void {
    this.view = v;
    this.draw();
  }

  private layout() {
    const { width, height } = this.size();
    return graphLayout(this.g.tokens.length, this.g.rows.length, width, height, this.view);
  }

  private bindPointer(): void {
    const T = this.g.tokens.length;
    let drag: { x: number; moved: boolean } | null = null;
    this.canvas.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const at = this.layout().x.invert(ev.offsetX);
      this.setView(zoom(this.view, ev.deltaY < 0 ? 1.25 : 0.8, at, T));
    }, { passive: false });
    this.canvas.addEventListener("pointerdown", (ev) => (drag = { x: ev.offsetX, moved: false }));
    this.canvas.addEventListener("pointermove", (ev) => {
      if (!drag || Math.abs(ev.offsetX - drag.x) < 3) return;
      const lay = this.layout();
      this.setView(pan(this.view, lay.x.invert(drag.x) - lay.x.invert(ev.offsetX), T));
      drag = { x: ev.offsetX, moved: true };
    });
    this.canvas.addEventListener("pointerup", (ev) => {
      const wasDrag = drag?.moved;
      drag = null;
      if (wasDrag) return;
      const hit = hitNode(this.layout(), ev.offsetX, ev.offsetY);
      this.selected = hit;
      this.draw();
      this.opts.onSelect(this.selected);
    });
  }
}
