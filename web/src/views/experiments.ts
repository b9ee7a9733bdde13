/** Experiments: sweep runs (per-layer divergence and first-position share per category, with bands; per-pair
 * rows and prompts) and profile runs (per-corpus summary, any table of the folder), from the server's experiments routes. */

import type { components } from "../api/types";
import type { Painter } from "../paint";
import type { Align } from "../state";
import { fmt, linear, type Linear } from "../scale";
import type { Table } from "./table";

type Schemas = components["schemas"];
export type Experiment = Schemas["ExperimentOut"];
export type SweepSummary = Schemas["SweepOut"];
export type ProfileSummary = Schemas["ProfileOut"];
export type SweepCurves = Schemas["SweepCurvesOut"];
export type TableRows = Schemas["TableRowsOut"];
export type SweepPair = Schemas["SweepPairOut"];

const PALETTE = ["#2166ac", "#b2182b", "#1b7837", "#762a83", "#e08214", "#35978f", "#c51b7d", "#8c510a"];

/** The colour of the ``i``-th category (dataset order), the same in both charts. */
export function categoryColor(i: number): string {
  return PALETTE[i % PALETTE.length];
}

/** A value of a table cell as shown: numbers to 3 significant digits, null as a dash. */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : fmt(value);
  return String(value);
}

/** The run folders under --runs. */
export function experimentsTable(list: Experiment[]): Table {
  return { title: "Experiments (sweep and profile run folders)", columns: ["name", "command", "model", "finished", "tables"],
    rows: list.map((e) => [e.name, e.command, e.model, e.finished ? "yes" : "no", e.tables.map((t) => t.name).join(", ")]) };
}

const ci = (row: Record<string, unknown>, name: string) =>
  `${cellText(row[name])} [${cellText(row[`${name}_lo`])}, ${cellText(row[`${name}_hi`])}]`;

/** Per category (then all, then the length groups): pairs, peak and first divergence layers and area with their
 * 95% bounds, mean JS, the first-position bottleneck. */
export function sweepTable(v: SweepSummary): Table {
  const rows = [...v.categories, ...v.length_groups] as Record<string, unknown>[];
  return {
    title: `Sweep ${v.run}: ${v.pairs} pairs on ${v.model}, ${v.layers} layers (aligned by ${v.align})`,
    columns: ["category", "pairs", "peak layer", "first layer > " + fmt(v.threshold), "area", "mean JS", "bottleneck"],
    rows: rows.map((r) => [String(r.category), cellText(r.n_pairs), ci(r, "peak_layer"), ci(r, "first_layer"), ci(r, "area"),
      cellText(r.mean_js), `L${cellText(r.bottleneck_layer)} (${cellText(r.bottleneck_share)})`]),
  };
}

/** Per corpus: samples, tokens, truncation and the most sensitive layers. */
export function profileTable(v: ProfileSummary): Table {
  const corpora = v.corpora as Record<string, unknown>[];
  const layers = (x: unknown) => (Array.isArray(x) ? x.map((l) => `L${l}`).join(" ") : cellText(x));
  return {
    title: `Profile ${v.run}: ${v.model}, ${v.layers} layers, samples cut to ${v.max_tokens} tokens`,
    columns: ["corpus", "samples", "tokens", "truncated", "most sensitive layers", "relative"],
    rows: corpora.map((c) => [String(c.corpus), cellText(c.samples), cellText(c.tokens), cellText(c.truncated),
      layers(c.most_sensitive_layers), layers(c.most_sensitive_layers_relative)]),
  };
}

/** A page of a table query as a table. */
export function rowsTable(title: string, r: TableRows): Table {
  return { title, columns: r.columns, rows: r.rows.map((row) => row.map(cellText)),
    note: `${r.rows.length} of ${r.n_matched} rows${r.offset ? ` from ${r.offset}` : ""}` };
}

/** A sweep pair's prompts as the run traced them (a dash where the run did not record them) and its answer. */
export function pairPromptsTable(p: SweepPair): Table {
  return { title: `Pair ${p.id} (${p.category}) on ${p.model}`, columns: ["", "prompt"],
    rows: [["intended", p.intended ?? "–"], ["contradictory", p.contradictory ?? "–"], ["expected", p.expected ?? "–"]] };
}

/** Both prompts of a pair to trace on a served model, and how compare lines them up. */
export interface PairTraceTarget {
  model: string;
  intended: string;
  contradictory: string;
  align: Align;
  note: string; // how compare's alignment relates to the sweep's ("" when they are the same)
}

const RANDOM_SEEDED = /^random:(.+)@seed(\d+)$/; // how a run folder names a random init (lmxray.cli.runs.model_key)

/** What the page can do with a pair: trace both prompts on the served model that loads the run's model, or one
 * line saying why not (the run predates recorded prompts, or the server does not serve its model) and the fix. */
export function pairTraceTarget(p: SweepPair): PairTraceTarget | { note: string } {
  if (!p.recorded || p.intended === null || p.contradictory === null)
    return { note: p.note ?? "this run did not record the pair's prompts; rerun the sweep with --fresh" };
  if (p.served === null) {
    const random = RANDOM_SEEDED.exec(p.model);
    const fix = !random ? `start it with lmxray serve --model ${p.model}`
      : random[2] === "0" ? `start it with lmxray serve --model random:${random[1]}`
      : `lmxray serve loads random weights with seed 0 only; rerun the sweep with --seed 0`;
    return { note: `this server does not serve ${p.model}, the run's model: ${fix}` };
  }
  const align: Align = p.align === "end" ? "end" : "start";
  const note = p.align === align ? "" : `the sweep aligned the prompts by ${p.align}; compare aligns them at the ${align}`;
  return { model: p.served, intended: p.intended, contradictory: p.contradictory, align, note };
}

export interface CurvesLayout {
  width: number;
  height: number; // both panels
  x: Linear; // layer → x
  js: Linear; // bits → y, top panel
  share: Linear; // share → y, bottom panel
  panel: number; // one panel's height
}

const PAD = { left: 52, right: 150, top: 24, gap: 40, bottom: 30 };

/** Two stacked panels over the layers: mean JS with its band (top, up to the highest band) and the first-position
 * share (bottom, [0, its maximum]). */
export function curvesLayout(c: SweepCurves, width: number, panel = 200): CurvesLayout {
  const jsMax = Math.max(0, ...c.categories.flatMap((k) => k.js_hi));
  const shareMax = Math.max(0, ...c.categories.flatMap((k) => k.first_share.map((s) => s ?? 0)));
  const top2 = PAD.top + panel + PAD.gap;
  return {
    width, height: top2 + panel + PAD.bottom, panel,
    x: linear([0, Math.max(1, c.layers - 1)], [PAD.left, width - PAD.right]),
    js: linear([0, jsMax > 0 ? jsMax : 1], [PAD.top + panel, PAD.top]),
    share: linear([0, shareMax > 0 ? shareMax : 1], [top2 + panel, top2]),
  };
}

/** The band of a curve as a polygon: along ``hi`` left to right, back along ``lo``. */
export function bandPolygon(lo: number[], hi: number[], x: Linear, y: Linear): number[] {
  const out: number[] = [];
  hi.forEach((v, i) => out.push(x(i), y(v)));
  for (let i = lo.length - 1; i >= 0; i--) out.push(x(i), y(lo[i]));
  return out;
}

function axis(p: Painter, lay: CurvesLayout, y: Linear, title: string): void {
  p.line(PAD.left, y(0), lay.width - PAD.right, y(0), "#888", 1);
  const top = y.invert(y(0) - lay.panel);
  for (const t of [0, top / 2, top]) p.text(PAD.left - 4, y(t), fmt(t), { size: 10, color: "#666", align: "end" });
  p.text(PAD.left, y(top) - 12, title, { size: 11, weight: "bold" });
}

export function drawCurves(p: Painter, c: SweepCurves, lay: CurvesLayout): void {
  p.rect(0, 0, lay.width, lay.height, "#fff");
  axis(p, lay, lay.js, `Jensen–Shannon divergence (bits), mean with ${Math.round(c.level * 100)}% bootstrap band`);
  axis(p, lay, lay.share, "first-position share (both prompts)");
  c.categories.forEach((k, i) => {
    const color = categoryColor(i);
    p.polygon(bandPolygon(k.js_lo, k.js_hi, lay.x, lay.js), color, 0.18);
    const line = (ys: (number | null)[], y: Linear) => ys.forEach((v, l) => {
      const next = ys[l + 1];
      if (v !== null && next !== undefined && next !== null) p.line(lay.x(l), y(v), lay.x(l + 1), y(next), color, 1.5);
    });
    line(k.js_mean, lay.js);
    line(k.first_share, lay.share);
    p.rect(lay.width - PAD.right + 12, PAD.top + i * 16, 10, 10, color);
    p.text(lay.width - PAD.right + 26, PAD.top + i * 16 + 5, `${k.category} (${k.n_pairs})`, { size: 10 });
  });
  const labelEvery = Math.max(1, Math.ceil(c.layers / 16));
  for (let l = 0; l < c.layers; l += labelEvery)
    p.text(lay.x(l), lay.height - PAD.bottom + 14, `L${l}`, { size: 10, color: "#444", align: "middle" });
}
