import { describe, expect, it } from "vitest";
import { blockMax, cellCentre, hitCell, mapsLayout, panelOrigin } from "../src/views/maps";
import { bucketize, tokenLabel } from "../src/graph/render";
import { errorOf } from "../src/api/client";

describe("maps layout", () => {
  it("finds the cell under the pointer in each panel", () => {
    const lay = mapsLayout(4, 8, 1200);
    expect(lay.bin).toBe(1);
    for (let m = 0; m < 4; m++) {
      const [x0, y0] = panelOrigin(lay, m);
      expect(hitCell(lay, 4, x0 + 2.5 * lay.cell, y0 + 5.5 * lay.cell)).toEqual({ map: m, q: 5, k: 2 });
    }
    expect(hitCell(lay, 4, 1, 1)).toBeNull();
    const c = cellCentre(lay, 3, 6, 1);
    expect(hitCell(lay, 4, c.x, c.y)).toEqual({ map: 3, q: 6, k: 1 });
  });

  it("bins long prompts and shows each block's peak", () => {
    const lay = mapsLayout(1, 2048, 900, 256);
    expect(lay.bin).toBe(8);
    expect(lay.cells).toBe(256);
    const values = [[0, 0.1], [0.9, 0.2]];
    expect(blockMax(values, 0, 0, 2)).toBe(0.9);
    expect(blockMax(values, 1, 1, 2)).toBe(0.2);
  });
});

describe("graph drawing helpers", () => {
  it("makes whitespace visible and cuts long tokens", () => {
    expect(tokenLabel(" Paris")).toBe("·Paris");
    expect(tokenLabel("a\nb\tc")).toBe("a↵b⇥c");
    expect(tokenLabel("abcdefghijklmnop", 6)).toBe("abcde…");
  });

  it("buckets edges by weight above the threshold, residuals apart", () => {
    const list = { xy: new Float32Array(16), weight: Float32Array.from([0.5, 1, 0.75, 0.9]),
      kind: Uint8Array.from([0, 0, 0, 1]), count: 4, culled: 0, merged: 0, dropped: 0 };
    const b = bucketize(list, 0.5, 2);
    expect(b).toEqual([[0], [1, 2]]);
  });
});

describe("API errors", () => {
  it("carry the server's error and fix lines", () => {
    const e = errorOf(404, { error: "no run 'x' in the store", fix: "list the runs with GET /api/runs" });
    expect([e.status, e.problem, e.fix]).toEqual([404, "no run 'x' in the store", "list the runs with GET /api/runs"]);
    expect(errorOf(502, "<html>").problem).toBe("request failed with HTTP 502");
  });
});
