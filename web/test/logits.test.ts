import { describe, expect, it } from "vitest";
import { SvgPainter } from "../src/paint";
import { FLAG_COLORS, drawTrace, logitsTable, traceLayout, type LogitsData, type Step } from "../src/views/logits";

const step = (i: number, p1: number, entropy: number, flag: Step["flag"]): Step => ({
  step: i, prefix: "x", entropy, flag, chosen_id: i, chosen_text: ` t${i}`, chosen_prob: p1,
  candidates: [{ token_id: i, text: ` t${i}`, prob: p1, logit: 3 }, { token_id: 99, text: "<b>", prob: 0.05, logit: 1 }],
});

const view: LogitsData = {
  model: "tiny", prompt: "The capital of France is", temperature: 0, seed: null, generated: " t0 t1 t2",
  stopped: "steps", thresholds: { confident: 0.7, no_idea: 0.1 },
  steps: [step(0, 0.9, 0.5, "confident"), step(1, 0.4, 2, "uncertain"), step(2, 0.05, 4, "no idea")],
};

describe("generation logit trace", () => {
  it("shows per step the chosen token, its probability, entropy, flag and the top-k", () => {
    const t = logitsTable(view);
    expect(t.rows[1]).toEqual(["1", "·t1", "0.4", "0.4", "2", "uncertain", "·t1 0.4  <b> 0.05"]);
    expect(t.shade).toEqual([0.9, 0.4, 0.05]);
    expect(t.title).toContain("greedy");
    expect(t.note).toContain("confident above 0.7, no idea below 0.1; stopped at the step limit");
  });

  it("puts probabilities on [0, 1] and entropy on [0, its peak]", () => {
    const lay = traceLayout(view, 500);
    expect(lay.prob(1)).toBeCloseTo(lay.top);
    expect(lay.entropy(4)).toBeCloseTo(lay.top);
    expect(lay.entropy(2)).toBeCloseTo((lay.top + lay.bottom) / 2);
    expect(lay.x(2) - lay.x(1)).toBeCloseTo(lay.step);
  });

  it("colours each step's bar by its flag and draws entropy as one dot per step", () => {
    const lay = traceLayout(view, 500);
    const p = new SvgPainter(lay.width, lay.height);
    drawTrace(p, view, lay);
    const svg = p.toString();
    for (const flag of ["confident", "uncertain", "no idea"])
      expect(svg.match(new RegExp(`<rect [^>]*fill="${FLAG_COLORS[flag]}"`, "g"))?.length).toBe(1);
    expect(svg.match(/<circle /g)?.length).toBe(3);
  });
});
