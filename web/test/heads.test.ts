import { describe as group, expect, it } from "vitest";
import { SvgPainter } from "../src/paint";
import { cellOrigin, describe, drawHeads, headsLayout, hitHead, significant, topTable,
  type HeadsData } from "../src/views/heads";

const view: HeadsData = {
  model: "tiny", baseline: "random init (3 seeds)", patterns: ["previous_token", "induction"],
  shown: ["previous_token", "induction"], mixed_threshold: 0.3, z_significant: 2, layers: [0, 1], n_heads: 2,
  top: { previous_token: [{ layer: 1, head: 0, score: 0.9, label: "previous_token", baseline: 0.1, z: 8 }],
    induction: [] },
  grid: {
    scores: { previous_token: [[0.1, 0.2], [0.9, 0.5]], induction: [[0.0, 0.4], [0.1, 0.2]] },
    baseline: { previous_token: [[0.1, 0.1], [0.1, 0.1]], induction: [[0, 0.1], [0, 0]] },
    z: { previous_token: [[0, 1], [8, 1.5]], induction: [[0, 3], [0, 0]] },
    labels: [["mixed", "induction"], ["previous_token", "mixed"]],
  },
};

group("heads", () => {
  it("finds the cell under every cell's centre, and nothing between grids", () => {
    const lay = headsLayout(view, 400);
    for (const pattern of lay.patterns)
      for (let row = 0; row < 2; row++)
        for (let head = 0; head < 2; head++) {
          const { x, y } = cellOrigin(lay, { pattern, row, head });
          expect(hitHead(lay, x + lay.cell / 2, y + lay.cell / 2)).toEqual({ pattern, row, head });
        }
    expect(hitHead(lay, lay.left + lay.gridWidth + lay.gap / 2, lay.top + 1)).toBeNull();
    expect(hitHead(lay, lay.left + 1, lay.top - 1)).toBeNull();
  });

  it("calls a head significant at score ≥ the mixed threshold and z ≥ z_significant", () => {
    expect(significant(view, { pattern: "previous_token", row: 1, head: 0 })).toBe(true);
    expect(significant(view, { pattern: "previous_token", row: 1, head: 1 })).toBe(false); // z 1.5
    expect(significant(view, { pattern: "induction", row: 0, head: 1 })).toBe(true);
    const plain = { ...view, baseline: null, grid: { ...view.grid, z: {}, baseline: {} } };
    expect(significant(plain, { pattern: "previous_token", row: 1, head: 1 })).toBe(true);
  });

  it("describes a hovered head with its score, baseline and z", () => {
    expect(describe(view, { pattern: "previous_token", row: 1, head: 0 }))
      .toBe("L1 H0 previous_token: score 0.9, baseline 0.1, z 8 (previous_token)");
  });

  it("outlines exactly the significant heads and lists the top heads", () => {
    const lay = headsLayout(view, 400);
    const p = new SvgPainter(lay.width, lay.height);
    drawHeads(p, view, lay);
    expect(p.toString().match(/stroke="#000"/g)?.length).toBe(2);
    expect(topTable(view).rows).toEqual([["previous_token", "L1", "H0", "0.9", "0.1", "8", "previous_token"]]);
  });
});
