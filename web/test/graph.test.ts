import { describe, expect, it } from "vitest";
import { attentionGraph, buildGraph, layerOf, nodeEdges, prune, type EdgeInput, type GraphData } from "../src/graph/model";
import { drawList, graphLayout, hitNode, pan, zoom } from "../src/graph/layout";

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

function randomGraph(seed: number, T: number, L: number, implicitResidual: boolean): { g: GraphData; edges: EdgeInput[] } {
  const r = rng(seed);
  const edges: EdgeInput[] = [];
  for (let l = 0; l < L; l++)
    for (let q = 0; q < T; q++)
      for (let k = 0; k <= q; k++) if (r() < 0.3) edges.push({ layer: l, src: k, dst: q, weight: r() });
  r(); // shuffle order so packing must group by layer
  edges.sort(() => r() - 0.5);
  const g = buildGraph({ tokens: Array.from({ length: T }, (_, i) => `t${i}`), layers: [...Array(L).keys()],
    position: T - 1, measure: "w", implicitResidual }, edges);
  return { g, edges };
}

/** Reachability by fixpoint iteration over the edge list: the independent reference for prune(). */
function naivePrune(edges: EdgeInput[], T: number, L: number, position: number, thr: number, residual: boolean) {
  const reached = new Set([`${L}:${position}`]);
  const kept = new Set<string>();
  for (let changed = true; changed;) {
    changed = false;
    for (const e of edges) {
      const key = `${e.layer}:${e.src}>${e.dst}:${e.weight}`;
      if (e.weight >= thr && reached.has(`${e.layer + 1}:${e.dst}`) && !kept.has(key)) {
        kept.add(key);
        reached.add(`${e.layer}:${e.src}`);
        changed = true;
      }
    }
    if (residual) for (let row = L; row > 0; row--) for (let t = 0; t < T; t++)
      if (reached.has(`${row}:${t}`) && !reached.has(`${row - 1}:${t}`)) {
        reached.add(`${row - 1}:${t}`);
        changed = true;
      }
  }
  return { reached, kept };
}

describe("graph pruning", () => {
  for (const residual of [true, false]) for (const thr of [0.2, 0.5, 0.9]) {
    it(`keeps exactly the edges over ${thr} that reach the prediction (residual ${residual})`, () => {
      const T = 9, L = 5;
      const { g, edges } = randomGraph(7 + thr * 10, T, L, residual);
      const p = prune(g, thr);
      const ref = naivePrune(edges, T, L, T - 1, thr, residual);
      const got = new Set([...p.kept].map((e) => `${layerOf(g, e)}:${g.src[e]}>${g.dst[e]}:${g.weight[e]}`));
      const refKept = new Set([...ref.kept].map((k) => k.replace(/:([\d.e-]+)$/, (_, w) => `:${Math.fround(Number(w))}`)));
      expect(got).toEqual(refKept);
      for (let row = 0; row <= L; row++) for (let t = 0; t < T; t++)
        expect(p.reached[row * T + t] === 1, `node ${row}:${t}`).toBe(ref.reached.has(`${row}:${t}`));
    });
  }

  it("packs edges by layer whatever their input order", () => {
    const { g } = randomGraph(3, 6, 4, true);
    for (let l = 0; l < 4; l++) for (let e = g.offsets[l]; e < g.offsets[l + 1]; e++) expect(layerOf(g, e)).toBe(l);
    expect(g.offsets[4]).toBe(g.src.length);
  });

  it("builds attention edges as the head mean, causal and up to the prediction only", () => {
    const values = [[4, 0, 0], [1, 3, 0], [2, 1, 1]]; // a 3-token head-summed map of 4 heads
    const g = attentionGraph(["a", "b", "c"], [{ layer: 7, values }], 4, 1);
    const edges = [...g.src].map((s, i) => [s, g.dst[i], g.weight[i]]);
    expect(edges).toEqual([[0, 0, 1], [0, 1, 0.25], [1, 1, 0.75]]);
    expect(g.layers).toEqual([7]);
  });

  it("lists a node's kept edges strongest first", () => {
    const g = buildGraph({ tokens: ["a", "b", "c"], layers: [0, 1], position: 2, measure: "w", implicitResidual: false }, [
      { layer: 1, src: 0, dst: 2, weight: 0.3 }, { layer: 1, src: 1, dst: 2, weight: 0.6 },
      { layer: 0, src: 0, dst: 1, weight: 0.5 }]);
    const p = prune(g, 0.1);
    const top = nodeEdges(g, p, 2, 2);
    expect(top.incoming.map((e) => g.weight[e])).toEqual([Math.fround(0.6), Math.fround(0.3)]);
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
    for (let q = 0; q < T; q++) edges.push({ layer: 0, src: Math.max(0, q - 1), dst: q, weight: 0.5 + (q % 7) / 100 });
    const g = buildGraph({ tokens: Array(T).fill("x"), layers: [0], position: T - 1, measure: "w", implicitResidual: false }, edges);
    const all = { threshold: 0, kept: Int32Array.from(edges.keys()), reached: new Uint8Array(2 * T) };
    const full = drawList(g, all, graphLayout(T, 2, 1000, 400));
    expect(full.culled).toBe(0);
    expect(full.count + full.merged).toBe(T);
    expect(full.count).toBeLessThan(T / 2); // ~932 px wide: several tokens share each 2-px bin
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
