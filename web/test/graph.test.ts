import { describe, expect, it } from "vitest";
import { attentionGraph, buildGraph, nodeEdges, prune, RESIDUAL, type EdgeInput, type GraphData, type Row } from "../src/graph/model";
import { drawList, graphLayout, hitNode, nodeDots, pan, zoom } from "../src/graph/layout";

/** A seeded generator (mulberry32), so every random graph here is the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rowsOf = (n: number): Row[] => Array.from({ length: n }, (_, i) => ({ label: `r${i}`, layer: i, kind: "out" }));

/** Random rising edges, some skipping rows (as routes' residual and MLP edges do), in shuffled order. */
function randomGraph(seed: number, T: number, R: number): { g: GraphData; edges: EdgeInput[] } {
  const r = rng(seed);
  const edges: EdgeInput[] = [];
  for (let dstRow = 1; dstRow < R; dstRow++)
    for (let q = 0; q < T; q++)
      for (let k = 0; k <= q; k++)
        if (r() < 0.3) edges.push({ srcRow: Math.max(0, dstRow - 1 - Math.floor(r() * 2)), src: k, dstRow, dst: q, weight: r() });
  edges.sort(() => r() - 0.5);
  const g = buildGraph({ tokens: Array.from({ length: T }, (_, i) => `t${i}`), rows: rowsOf(R), position: T - 1, measure: "w" }, edges);
  return { g, edges };
}

/** Reachability by fixpoint iteration over the edge list: the independent reference for prune(). */
function naivePrune(edges: EdgeInput[], R: number, position: number, thr: number) {
  const reached = new Set([`${R - 1}:${position}`]);
  const kept = new Set<EdgeInput>();
  for (let changed = true; changed;) {
    changed = false;
    for (const e of edges) {
      if (Math.fround(e.weight) >= thr && reached.has(`${e.dstRow}:${e.dst}`) && !kept.has(e)) {
        kept.add(e);
        reached.add(`${e.srcRow}:${e.src}`);
        changed = true;
      }
    }
  }
  return { reached, kept };
}

const key = (sr: number, s: number, dr: number, d: number, w: number) => `${sr}:${s}>${dr}:${d}@${Math.fround(w)}`;

describe("graph pruning", () => {
  for (const thr of [0.1, 0.4, 0.7]) {
    it(`keeps exactly the edges over ${thr} that reach the prediction`, () => {
      const T = 9, R = 6;
      const { g, edges } = randomGraph(7 + thr * 10, T, R);
      const p = prune(g, thr);
      const ref = naivePrune(edges, R, T - 1, thr);
      const got = new Set([...p.kept].map((e) => key(g.srcRow[e], g.src[e], g.dstRow[e], g.dst[e], g.weight[e])));
      expect(got).toEqual(new Set([...ref.kept].map((e) => key(e.srcRow, e.src, e.dstRow, e.dst, e.weight))));
      expect(p.kept.length).toBeGreaterThan(0);
      for (let row = 0; row < R; row++) for (let t = 0; t < T; t++)
        expect(p.reached[row * T + t] === 1, `node ${row}:${t}`).toBe(ref.reached.has(`${row}:${t}`));
    });
  }

  it("packs edges by the row they enter whatever their input order, and refuses falling edges", () => {
    const { g } = randomGraph(3, 6, 4);
    for (let r = 0; r < 4; r++) for (let e = g.offsets[r]; e < g.offsets[r + 1]; e++) expect(g.dstRow[e]).toBe(r);
    expect(g.offsets[4]).toBe(g.src.length);
    expect(() => buildGraph({ tokens: ["a"], rows: rowsOf(2), position: 0, measure: "w" },
      [{ srcRow: 1, src: 0, dstRow: 1, dst: 0, weight: 1 }])).toThrow(/must rise/);
  });

  it("builds attention edges as the head mean, causal, up to the prediction, with the residual stream", () => {
    const values = [[4, 0, 0], [1, 3, 0], [2, 1, 1]]; // a 3-token head-summed map of 4 heads
    const g = attentionGraph(["a", "b", "c"], [{ layer: 7, values }], 4, 1);
    const edges = [...g.src].map((s, i) => [s, g.dst[i], g.weight[i], g.kind[i]]);
    expect(edges).toEqual([[0, 0, 1, RESIDUAL], [0, 0, 1, 0], [1, 1, 1, RESIDUAL], [0, 1, 0.25, 0], [1, 1, 0.75, 0]]);
    expect(g.rows.map((r) => r.label)).toEqual(["emb", "L7"]);
    const p = prune(g, 0.5); // the residual carries position 1 down even where attention is pruned
    expect(p.reached[1]).toBe(1);
    expect(p.reached[0]).toBe(0);
  });

  it("lists a node's kept edges strongest first", () => {
    const g = buildGraph({ tokens: ["a", "b", "c"], rows: rowsOf(3), position: 2, measure: "w" }, [
      { srcRow: 1, src: 0, dstRow: 2, dst: 2, weight: 0.3 }, { srcRow: 1, src: 1, dstRow: 2, dst: 2, weight: 0.6 },
      { srcRow: 0, src: 0, dstRow: 1, dst: 1, weight: 0.5 }]);
    const p = prune(g, 0.1);
    expect(nodeEdges(g, p, 2, 2).incoming.map((e) => g.weight[e])).toEqual([Math.fround(0.6), Math.fround(0.3)]);
    expect(nodeEdges(g, p, 1, 1).outgoing.map((e) => g.src[e])).toEqual([1]);
  });
});

describe("graph layout", () => {
  it("puts row 0 at the bottom and token centres inside the plot", () => {
    const lay = graphLayout(10, 4, 600, 400);
    expect(lay.y(0)).toBe(lay.bottom);
    expect(lay.y(3)).toBe(lay.top);
    expect(lay.x(0)).toBe(lay.left);
    expect(lay.x(10)).toBeCloseTo(lay.right, 9);
    expect(hitNode(lay, lay.x(3.5), lay.y(2))).toEqual({ row: 2, token: 3 });
    expect(hitNode(lay, lay.x(3.5), (lay.y(2) + lay.y(1)) / 2)).toBeNull();
  });

  it("zooms about a token and pans within bounds", () => {
    const v = zoom({ t0: 0, t1: 100 }, 4, 50, 100);
    expect(v).toEqual({ t0: 37.5, t1: 62.5 });
    expect(pan(v, 1000, 100)).toEqual({ t0: 75, t1: 100 });
    expect(pan(v, -1000, 100)).toEqual({ t0: 0, t1: 25 });
    expect(zoom(v, 0.01, 50, 100)).toEqual({ t0: 0, t1: 100 });
  });

  it("culls off-screen edges and merges sub-pixel ones, counting both", () => {
    const T = 2048;
    const edges: EdgeInput[] = [];
    for (let q = 0; q < T; q++) edges.push({ srcRow: 0, src: Math.max(0, q - 1), dstRow: 1, dst: q, weight: 0.5 + (q % 7) / 100 });
    const g = buildGraph({ tokens: Array(T).fill("x"), rows: rowsOf(2), position: T - 1, measure: "w" }, edges);
    const all = { threshold: 0, kept: Int32Array.from(edges.keys()), reached: new Uint8Array(2 * T) };
    const full = drawList(g, all, graphLayout(T, 2, 1000, 400));
    expect(full.culled).toBe(0);
    expect(full.count + full.merged).toBe(T);
    expect(full.count).toBeLessThan(T / 2); // ~930 px wide: several tokens share each 2-px bin
    const zoomed = drawList(g, all, graphLayout(T, 2, 1000, 400, { t0: 1000, t1: 1100 }));
    expect(zoomed.merged).toBe(0);
    expect(zoomed.count + zoomed.culled).toBe(T);
    expect(zoomed.count).toBeGreaterThanOrEqual(100);
    expect(zoomed.count).toBeLessThanOrEqual(102);
    const capped = drawList(g, all, graphLayout(T, 2, 1000, 400, { t0: 1000, t1: 1100 }), 10);
    expect(capped.count).toBe(10);
    expect(capped.dropped).toBe(zoomed.count - 10);
    const strongest = [...zoomed.weight].sort((a, b) => b - a).slice(0, 10);
    expect([...capped.weight].sort((a, b) => b - a)).toEqual(strongest);
  });
});

describe("node dots", () => {
  it("draws one dot per reached node, or per pixel bin when tokens are narrower than 2 px", () => {
    const reached = new Uint8Array(2 * 2048);
    reached.fill(1, 0, 2048); // row 0: every token
    reached[2048 + 2047] = 1; // row 1: the root only
    const small = new Uint8Array(2 * 16).fill(1, 0, 16);
    small[16 + 15] = 1;
    const wide = nodeDots(small, graphLayout(16, 2, 1000, 400));
    expect(wide.count).toBe(17);
    const dense = nodeDots(reached, graphLayout(2048, 2, 1000, 400));
    expect(dense.count).toBeLessThanOrEqual(Math.ceil(930 / 2) + 2);
    expect(dense.count).toBeGreaterThan(400);
    const zoomed = nodeDots(reached, graphLayout(2048, 2, 1000, 400, { t0: 2000, t1: 2048 }));
    expect(zoomed.count).toBe(48 + 1);
  });
});
