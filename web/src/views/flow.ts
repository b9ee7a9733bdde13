/** Exact flow (``FlowView.to_dict()``): per layer each source's share of the residual, stacked, and the chosen
 * token's logit (or a contrast A − B) split over the sources. */

import type { Painter } from "../paint";
import { fmt } from "../scale";
import { tokenLabel } from "../graph/render";
import type { Table } from "./table";

export interface FlowLayer {
  layer: number;
  attention: number[];
  mlp: number[];
  total: number[];
  attention_share: number[];
  mlp_share: number[];
  total_share: number[];
}

export interface Attribution {
  token_id: number;
  text: string;
  logit: number;
  sum: number;
  sink: number;
  content: number;
  bias: number;
  contributions: number[];
}

export interface Contrast {
  a: { token_id: number; text: string; logit: number };
  b: { token_id: number; text: string; logit: number };
  difference: number;
  sum: number;
  sink: number;
  content: number;
  bias: number;
  contributions: number[];
}

/** The parts of a FlowView the page reads (the server's flow job result); source lists end with the bias. */
export interface FlowData {
  model: string;
  prompt: string;
  tokens: string[];
  position: number;
  sources: string[];
  max_error: number;
  layers: FlowLayer[];
  attribution: Attribution[]; // the prediction first, then the asked-for tokens
  contrast: Contrast | null;
  confidence: number | null;
}

// Categorical colours for content sources (cycled); the sink and the bias have their own.
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
  "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5"];
export const SINK_COLOR = "#bbbbbb";
export const BIAS_COLOR = "#333333";

/** The colour of source ``i`` of ``n`` (0 is the sink, the last is the bias). */
export function sourceColor(i: number, n: number): string {
  if (i === 0) return SINK_COLOR;
  if (i === n - 1) return BIAS_COLOR;
  return PALETTE[(i - 1) % PALETTE.length];
}

export interface Segment {
  layer: number; // index into FlowData.layers
  source: number;
  y: number;
  height: number;
}

export interface StackLayout {
  width: number;
  height: number;
  top: number;
  bottom: number;
  x: (i: number) => number; // left edge of layer i's bar
  bar: number;
  segments: Segment[];
}

const PAD = { left: 44, right: 16, top: 24, bottom: 40 };

/** Stacked bars: per layer the sources' shares of the residual's total (``total_share``, summing to 1), bottom up
 * in source order; zero shares get no segment. */
export function stackLayout(v: FlowData, width: number, height = 280): StackLayout {
  const n = Math.max(1, v.layers.length);
  const step = (width - PAD.left - PAD.right) / n;
  const top = PAD.top;
  const bottom = height - PAD.bottom;
  const segments: Segment[] = [];
  v.layers.forEach((l, i) => {
    let y = bottom;
    l.total_share.forEach((share, s) => {
      const h = Math.max(0, share) * (bottom - top);
      if (h <= 0) return;
      y -= h;
      segments.push({ layer: i, source: s, y, height: h });
    });
  });
  return { width, height, top, bottom, bar: Math.max(1, step * 0.75), x: (i) => PAD.left + i * step + step * 0.125,
    segments };
}

export function drawStack(p: Painter, v: FlowData, lay: StackLayout): void {
  p.rect(0, 0, lay.width, lay.height, "#fff");
  p.text(PAD.left, 12, `Share of the residual at position ${v.position} (“${tokenLabel(v.tokens[v.position] ?? "")}”) by source`,
    { size: 11 });
  for (const t of [0, 0.5, 1])
    p.text(PAD.left - 4, lay.bottom - t * (lay.bottom - lay.top), fmt(t), { size: 10, color: "#666", align: "end" });
  for (const s of lay.segments)
    p.rect(lay.x(s.layer), s.y, lay.bar, s.height, sourceColor(s.source, v.sources.length));
  v.layers.forEach((l, i) =>
    p.text(lay.x(i) + lay.bar / 2, lay.bottom + 12, `L${l.layer}`, { size: 10, color: "#444", align: "middle" }));
  p.text(PAD.left, lay.height - 10, "grey: the first source (attention sink); black: biases; colours: the other sources",
    { size: 10, color: "#666" });
}

/** The attribution being shown: the contrast when there is one, else the token ``text`` (the prediction when no
 * token is named or it was not attributed). */
export function chosen(v: FlowData, text?: string): Attribution | Contrast {
  if (v.contrast) return v.contrast;
  return v.attribution.find((a) => text !== undefined && a.text === text) ?? v.attribution[0];
}

/** Per source: its contribution to the chosen logit (or to A − B), with the sink / content / bias split noted. */
export function attributionTable(v: FlowData, a: Attribution | Contrast): Table {
  const what = "difference" in a ? `logit(“${a.a.text}”) − logit(“${a.b.text}”) = ${fmt(a.difference)}`
    : `logit(“${a.text}”) = ${fmt(a.logit)}`;
  const peak = Math.max(1e-12, ...a.contributions.map(Math.abs));
  return {
    title: `Attribution of ${what}`,
    columns: ["source", "contribution", "share of |max|"],
    rows: a.contributions.map((c, i) => [tokenLabel(v.sources[i] ?? "", 20), fmt(c), fmt(c / peak)]),
    shade: a.contributions.map((c) => Math.abs(c) / peak),
    note: `sum ${fmt(a.sum)} = sink ${fmt(a.sink)} + content ${fmt(a.content)} + bias ${fmt(a.bias)}; ` +
      `decomposition error ≤ ${fmt(v.max_error)}`,
  };
}
