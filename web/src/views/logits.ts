/** The generation logit trace (``LogitsView.to_dict()``): per step the chosen token, top-k, entropy and a flag. */

import type { Painter } from "../paint";
import { fmt, linear, type Linear } from "../scale";
import { tokenLabel } from "../graph/render";
import type { Table } from "./table";

export interface Candidate {
  token_id: number;
  text: string;
  prob: number; // softmax of the raw logits (temperature 1)
  logit: number;
}

export interface Step {
  step: number;
  prefix: string;
  candidates: Candidate[]; // best first
  entropy: number; // nats, full distribution at temperature 1
  flag: "confident" | "uncertain" | "no idea";
  chosen_id: number;
  chosen_text: string;
  chosen_prob: number;
}

/** The parts of a LogitsView the page reads (the server's logits job result). */
export interface LogitsData {
  model: string;
  prompt: string;
  temperature: number;
  seed: number | null;
  steps: Step[];
  generated: string;
  stopped: "steps" | "eos";
  thresholds: { confident: number; no_idea: number };
}

export const FLAG_COLORS: Record<string, string> = { confident: "#1a9850", uncertain: "#fdae61", "no idea": "#d73027" };

/** One row per step: chosen token and its probability, the top-1, entropy (nats) and flag, the top-k. */
export function logitsTable(v: LogitsData, top = 5): Table {
  const decoding = v.temperature === 0 ? "greedy" : `temperature ${v.temperature}, seed ${v.seed}`;
  return {
    title: `Generation logit trace (${decoding}): “${tokenLabel(v.prompt, 40)}” → “${tokenLabel(v.generated, 40)}”`,
    columns: ["step", "chosen", "p", "top-1 p", "entropy (nats)", "flag", `top ${top}`],
    rows: v.steps.map((s) => [String(s.step), tokenLabel(s.chosen_text, 14), fmt(s.chosen_prob),
      fmt(s.candidates[0]?.prob), fmt(s.entropy), s.flag,
      s.candidates.slice(0, top).map((c) => `${tokenLabel(c.text, 10)} ${fmt(c.prob)}`).join("  ")]),
    shade: v.steps.map((s) => s.candidates[0]?.prob ?? 0),
    note: `flags from the top-1 probability: confident above ${fmt(v.thresholds.confident)}, no idea below ` +
      `${fmt(v.thresholds.no_idea)}; stopped at ${v.stopped === "eos" ? "end of sequence" : "the step limit"}`,
  };
}

export interface TraceLayout {
  width: number;
  height: number;
  x: (i: number) => number; // centre of step i
  step: number; // px between steps
  prob: Linear; // probability → y
  entropy: Linear; // nats → y
  top: number;
  bottom: number;
}

const PAD = { left: 48, right: 56, top: 28, bottom: 44 };

/** Geometry of the trace chart: top-1 probability bars (left axis, [0, 1]), entropy as a line (right axis). */
export function traceLayout(v: LogitsData, width: number, height = 240): TraceLayout {
  const n = Math.max(1, v.steps.length);
  const step = (width - PAD.left - PAD.right) / n;
  const top = PAD.top;
  const bottom = height - PAD.bottom;
  const peak = Math.max(0, ...v.steps.map((s) => s.entropy));
  return {
    width, height, step, top, bottom,
    x: (i) => PAD.left + (i + 0.5) * step,
    prob: linear([0, 1], [bottom, top]),
    entropy: linear([0, peak > 0 ? peak : 1], [bottom, top]),
  };
}

/** Draws the trace: per step a bar of the top-1 probability coloured by its flag, the chosen token under it,
 * the flag thresholds as dashed-looking guides and entropy as a dark line. */
export function drawTrace(p: Painter, v: LogitsData, lay: TraceLayout): void {
  p.rect(0, 0, lay.width, lay.height, "#fff");
  p.text(PAD.left, 12, "top-1 probability (bar colour: flag)", { size: 11 });
  p.text(lay.width - PAD.right, 12, "entropy (nats)", { size: 11, align: "end", color: "#444" });
  for (const t of [0, 0.5, 1]) p.text(PAD.left - 4, lay.prob(t), fmt(t), { size: 10, color: "#666", align: "end" });
  const emax = lay.entropy.invert(lay.top);
  for (const t of [0, emax / 2, emax]) p.text(lay.width - PAD.right + 4, lay.entropy(t), fmt(t), { size: 10, color: "#666" });
  for (const t of [v.thresholds.confident, v.thresholds.no_idea])
    p.line(PAD.left, lay.prob(t), lay.width - PAD.right, lay.prob(t), "#999", 1, 0.6);
  const bar = Math.max(1, lay.step * 0.6);
  v.steps.forEach((s, i) => {
    const y = lay.prob(s.candidates[0]?.prob ?? 0);
    p.rect(lay.x(i) - bar / 2, y, bar, lay.bottom - y, FLAG_COLORS[s.flag] ?? "#888");
    p.text(lay.x(i), lay.bottom + 12, tokenLabel(s.chosen_text, 8), { size: 10, align: "middle" });
  });
  const pts = v.steps.map((s, i) => [lay.x(i), lay.entropy(s.entropy)]);
  pts.slice(1).forEach(([x, y], i) => p.line(pts[i][0], pts[i][1], x, y, "#333", 1.5));
  pts.forEach(([x, y]) => p.circle(x, y, 2.5, "#333"));
  p.text(PAD.left, lay.height - 10, "generated token (step)", { size: 10, color: "#666" });
}
