import { describe, expect, it } from "vitest";
import type { CompareView } from "../src/api/views";
import { SvgPainter } from "../src/paint";
import { cell, chartLayout, drawChart, layerTable, metricsTable } from "../src/views/compare";

const view: CompareView = {
  a: "aa", b: "bb", warning: null, align: "start", models: null,
  metrics: [{ metric: "first-position share", a: 0.51234, b: 0.2, key: "first_share" },
    { metric: "predicted", a: "Paris", b: null, key: "predicted_text" }],
  layers: [
    { layer: 0, js_bits: 0.1, first_share_a: 0.5, first_share_b: 0.25, entropy_norm_a: 0.9, entropy_norm_b: 0.8 },
    { layer: 1, js_bits: 0.4, first_share_a: 0.75, first_share_b: 0.125, entropy_norm_a: 0.7, entropy_norm_b: 0.6 },
    { layer: 2, js_bits: 0.2, first_share_a: 1, first_share_b: 0, entropy_norm_a: 0.5, entropy_norm_b: 0.4 },
  ],
  sides: { a: { prompt: "The capital of France is", predicted_text: " Paris" },
    b: { prompt: "The capital of <script> is", predicted_text: " the" } },
  peak_layer: 1, peak_js_bits: 0.4, mean_js_bits: 0.7 / 3,
};

describe("compare", () => {
  it("lays out one row per layer with the view's numbers, tinted by their share of the peak", () => {
    const t = layerTable(view);
    expect(t.rows.map((r) => r[0])).toEqual(["L0", "L1", "L2"]);
    expect(t.rows[1]).toEqual(["L1", "0.4", "0.75", "0.125", "0.7", "0.6"]);
    expect(t.shade).toEqual([0.25, 1, 0.5]);
    expect(t.note).toBe("peak L1 (0.4 bits); mean 0.233 bits; aligned at the start");
  });

  it("shows metrics A beside B, numbers rounded and missing values as a dash", () => {
    expect(metricsTable(view).rows).toEqual([["first-position share", "0.512", "0.2"], ["predicted", "Paris", "–"]]);
    expect(cell(undefined)).toBe("–");
  });

  it("scales bars to the peak divergence and shares to [0, 1]", () => {
    const lay = chartLayout(view.layers, 600);
    expect(lay.js(0.4)).toBeCloseTo(lay.top);
    expect(lay.js(0)).toBeCloseTo(lay.bottom);
    expect(lay.bottom - lay.js(0.1)).toBeCloseTo((lay.bottom - lay.top) / 4);
    expect(lay.share(1)).toBeCloseTo(lay.top);
    expect(lay.x(1) - lay.x(0)).toBeCloseTo(lay.x(2) - lay.x(1));
    expect(lay.x(2) + lay.bar).toBeLessThanOrEqual(600);
  });

  it("draws one bar per layer and each side's share line in the SVG", () => {
    const lay = chartLayout(view.layers, 600);
    const p = new SvgPainter(lay.width, lay.height);
    drawChart(p, view.layers, lay);
    const svg = p.toString();
    expect(svg.match(/<rect [^>]*fill="#b2182b"/g)?.length).toBe(3);
    expect(svg.match(/<circle /g)?.length).toBe(6);
    expect(svg.match(/<line [^>]*stroke="#2166ac"/g)?.length).toBe(2);
  });

  it("keeps an all-zero divergence on the axis instead of dividing by zero", () => {
    const flat = view.layers.map((r) => ({ ...r, js_bits: 0 }));
    const lay = chartLayout(flat, 400);
    expect(lay.js(0)).toBeCloseTo(lay.bottom);
    expect(layerTable({ ...view, layers: flat, peak_js_bits: 0 }).shade).toEqual([0, 0, 0]);
  });
});
