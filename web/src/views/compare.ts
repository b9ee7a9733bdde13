/** Compare: two runs side by side — per-layer divergence as a chart and a table, and the summaries' metrics. */

import type { CompareView } from "../api/views";
import type { Painter } from "../paint";
import { fmt, linear, type Linear } from "../scale";
import { tokenLabel } from "../graph/render";
import type { Table } from "./table";

type LayerRow = CompareView["layers"][number];

/** One metric's value as shown: numbers to 3 significant digits, anything else as its text. */
export function cell(value: unknown): string {
  if (value === null || value === undefined) return "–";
  return typeof value === "number" ? fmt(value) : String(value);
}

/** The per-layer rows: JS divergence (bits) of the two prediction-position attention distributions, the share on
 * the first position and the normalised entropy of each side; rows tinted by their share of the peak divergence. */
export function layerTable(v: CompareView): Table {
  const peak = v.peak_js_bits ?? 0;
  return {
    title: `Per-layer divergence, A “${tokenLabel(v.sides.a?.prompt ?? v.a, 40)}” vs B “${tokenLabel(v.sides.b?.prompt ?? v.b, 40)}”`,
    columns: ["layer", "JS (bits)", "first share A", "first share B", "entropy A", "entropy B"],
    rows: v.layers.map((r) => [`L${r.layer}`, fmt(r.js_bits), fmt(r.first_share_a), fmt(r.first_share_b),
      fmt(r.entropy_norm_a), fmt(r.entropy_norm_b)]),
    shade: v.layers.map((r) => (peak > 0 ? r.js_bits / peak : 0)),
    note: [v.peak_layer === null ? "" : `peak L${v.peak_layer} (${fmt(v.peak_js_bits)} bits)`,
      v.mean_js_bits === null ? "" : `mean ${fmt(v.mean_js_bits)} bits`, `aligned at the ${v.align}`,
      v.warning ?? "", v.models ?? ""].filter(Boolean).join("; "),
  };
}

/** The two summaries' metrics, A beside B. */
export function metricsTable(v: CompareView): Table {
  return {
    title: `A → “${v.sides.a?.predicted_text ?? "?"}”, B → “${v.sides.b?.predicted_text ?? "?"}”`,
    columns: ["metric", "A", "B"],
    rows: v.metrics.map((m) => [m.metric, cell(m.a), cell(m.b)]),
  };
}

export interface ChartLayout {
  width: number;
  height: number;
  x: (i: number) => number; // left edge of layer i's bar
  bar: number; // bar width
  js: Linear; // bits → y
  share: Linear; // first-position share in [0, 1] → y
  top: number;
  bottom: number;
}

const PAD = { left: 48, right: 48, top: 28, bottom: 40 };

/** Geometry of the divergence chart for ``layers`` at ``width`` px: bars on a bits axis (left), shares on [0, 1] (right). */
export function chartLayout(layers: LayerRow[], width: number, height = 260): ChartLayout {
  const n = Math.max(1, layers.length);
  const step = (width - PAD.left - PAD.right) / n;
  const top = PAD.top;
  const bottom = height - PAD.bottom;
  const peak = Math.max(0, ...layers.map((r) => r.js_bits));
  return {
    width, height, top, bottom, bar: Math.max(1, step * 0.7),
    x: (i) => PAD.left + i * step + step * 0.15,
    js: linear([0, peak > 0 ? peak : 1], [bottom, top]),
    share: linear([0, 1], [bottom, top]),
  };
}

const COLORS = { js: "#b2182b", a: "#2166ac", b: "#4d9221" };

/** Draws the chart: JS bits per layer as bars, each side's first-position share as a line with dots. */
export function drawChart(p: Painter, layers: LayerRow[], lay: ChartLayout): void {
  p.rect(0, 0, lay.width, lay.height, "#fff");
  p.line(PAD.left, lay.bottom, lay.width - PAD.right, lay.bottom, "#888", 1);
  p.text(PAD.left, 12, "JS divergence (bits)", { size: 11, color: COLORS.js });
  p.text(lay.width - PAD.right, 12, "first-position share: A", { size: 11, color: COLORS.a, align: "end" });
  p.text(lay.width - PAD.right, 24, "B", { size: 11, color: COLORS.b, align: "end" });
  const peak = lay.js.invert(lay.top);
  for (const t of [0, peak / 2, peak]) p.text(PAD.left - 4, lay.js(t), fmt(t), { size: 10, color: "#666", align: "end" });
  for (const t of [0, 0.5, 1]) p.text(lay.width - PAD.right + 4, lay.share(t), fmt(t), { size: 10, color: "#666" });
  layers.forEach((r, i) => {
    const y = lay.js(r.js_bits);
    p.rect(lay.x(i), y, lay.bar, lay.bottom - y, COLORS.js);
    p.text(lay.x(i) + lay.bar / 2, lay.bottom + 12, `L${r.layer}`, { size: 10, color: "#444", align: "middle" });
  });
  for (const [side, color] of [["a", COLORS.a], ["b", COLORS.b]] as const) {
    const pts = layers.map((r, i) => [lay.x(i) + lay.bar / 2, lay.share(side === "a" ? r.first_share_a : r.first_share_b)]);
    pts.slice(1).forEach(([x, y], i) => p.line(pts[i][0], pts[i][1], x, y, color, 1.5));
    pts.forEach(([x, y]) => p.circle(x, y, 2.5, color));
  }
  p.text(PAD.left, lay.height - 10, "layer (attention at the prediction position, head-summed)", { size: 10, color: "#666" });
}
