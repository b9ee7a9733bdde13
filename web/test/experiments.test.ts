import { describe, expect, it } from "vitest";
import { SvgPainter } from "../src/paint";
import { bandPolygon, categoryColor, cellText, curvesLayout, drawCurves, profileTable, rowsTable, sweepTable,
  type ProfileSummary, type SweepCurves, type SweepSummary } from "../src/views/experiments";

const curves: SweepCurves = {
  run: "sw", layers: 3, level: 0.95,
  categories: [
    { category: "capitals", n_pairs: 4, js_mean: [0.1, 0.3, 0.2], js_lo: [0.05, 0.2, 0.1], js_hi: [0.2, 0.4, 0.3],
      first_share: [0.5, 0.25, null] },
    { category: "dates", n_pairs: 2, js_mean: [0, 0.1, 0.1], js_lo: [0, 0.05, 0.05], js_hi: [0, 0.2, 0.2],
      first_share: [0.4, 0.2, 0.1] },
  ],
};

describe("sweep curves", () => {
  it("scales divergence to the highest band and shares to their maximum, layers across the width", () => {
    const lay = curvesLayout(curves, 700);
    expect(lay.js(0.4)).toBeCloseTo(lay.js(0) - lay.panel);
    expect(lay.share(0.5)).toBeCloseTo(lay.share(0) - lay.panel);
    expect(lay.x(1) - lay.x(0)).toBeCloseTo(lay.x(2) - lay.x(1));
    expect(lay.share(0)).toBeGreaterThan(lay.js(0)); // the share panel sits below
  });

  it("draws a band as one polygon along the upper bound and back along the lower", () => {
    const id = Object.assign((v: number) => v, { invert: (v: number) => v });
    expect(bandPolygon([1, 2], [3, 4], id, id)).toEqual([0, 3, 1, 4, 1, 2, 0, 1]);
  });

  it("draws per category a band, its mean and share lines (a missing share breaks the line), in one colour", () => {
    const lay = curvesLayout(curves, 700);
    const p = new SvgPainter(lay.width, lay.height);
    drawCurves(p, curves, lay);
    const svg = p.toString();
    expect(svg.match(/<polygon /g)?.length).toBe(2);
    expect(svg.match(new RegExp(`<line [^>]*stroke="${categoryColor(0)}"`, "g"))?.length).toBe(2 + 1);
    expect(svg.match(new RegExp(`<line [^>]*stroke="${categoryColor(1)}"`, "g"))?.length).toBe(2 + 2);
  });
});

describe("experiment tables", () => {
  it("shows bounds beside each sweep estimate and a dash where there is none", () => {
    const v = { run: "sw", command: "sweep", schema: 2, model: "m", pairs: 4, layers: 3, threshold: 0.05, align: "tokens",
      categories: [{ category: "capitals", n_pairs: 4, peak_layer: 1.25, peak_layer_lo: 1, peak_layer_hi: 1.5,
        first_layer: null, first_layer_lo: null, first_layer_hi: null, area: 0.5, area_lo: 0.25, area_hi: 0.75,
        mean_js: 0.2, bottleneck_layer: 2, bottleneck_share: 0.125 }],
      length_groups: [], length_split: {} } as SweepSummary;
    expect(sweepTable(v).rows).toEqual([["capitals", "4", "1.25 [1, 1.5]", "– [–, –]", "0.5 [0.25, 0.75]", "0.2", "L2 (0.125)"]]);
  });

  it("lists a profile's corpora with their most sensitive layers", () => {
    const v = { run: "prof", command: "profile", model: "m", layers: 3, max_tokens: 16,
      corpora: [{ corpus: "mine", samples: 3, tokens: 40, truncated: 1, most_sensitive_layers: [2, 0],
        most_sensitive_layers_relative: [] }] } as ProfileSummary;
    expect(profileTable(v).rows).toEqual([["mine", "3", "40", "1", "L2 L0", ""]]);
    expect(profileTable(v).title).toContain("cut to 16 tokens");
  });

  it("turns a query page into rows, integers kept whole", () => {
    const t = rowsTable("pairs", { table: "pairs", columns: ["id", "js", "ok"], rows: [["a", 0.123456, true], ["b", 3, null]],
      n_matched: 10, limit: 2, offset: 0 });
    expect(t.rows).toEqual([["a", "0.123", "true"], ["b", "3", "–"]]);
    expect(t.note).toBe("2 of 10 rows");
    expect(cellText(1234567)).toBe("1234567");
  });
});
