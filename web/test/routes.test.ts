import { describe, expect, it } from "vitest";
import { MLP, prune, RESIDUAL } from "../src/graph/model";
import { routeRows, routesGraph, type RoutesData } from "../src/graph/routes";

// A two-token, one-layer sequential model's routes, in RoutesView.to_dict()'s shape.
const view: RoutesData = {
  tokens: ["a", "b"], position: 1, threshold: 0.1, parallel: false, n_layers: 1, root: "out/0/1",
  edges: [
    { source: "embed/0/0", target: "mid/0/1", kind: "attn", layer: 0, importance: 0.4, heads: [0.3, 0.1] },
    { source: "embed/0/1", target: "mid/0/1", kind: "residual", layer: 0, importance: 0.6, heads: null },
    { source: "mid/0/1", target: "mlp/0/1", kind: "mlp", layer: 0, importance: 1, heads: null },
    { source: "mlp/0/1", target: "out/0/1", kind: "mlp", layer: 0, importance: 0.2, heads: null },
    { source: "mid/0/1", target: "out/0/1", kind: "residual", layer: 0, importance: 0.8, heads: null },
  ],
};

describe("routes as a graph", () => {
  it("gives each layer mid, mlp and out rows (no mid for parallel models)", () => {
    expect(routeRows(2, false).map((r) => r.label)).toEqual(["emb", "L0 attn", "L0 mlp", "L0", "L1 attn", "L1 mlp", "L1"]);
    expect(routeRows(1, true).map((r) => r.kind)).toEqual(["embed", "mlp", "out"]);
  });

  it("places every edge on its rows with its kind, importance and heads", () => {
    const g = routesGraph(view);
    const edges = [...g.src.keys()].map((e) => [g.srcRow[e], g.src[e], g.dstRow[e], g.dst[e], g.kind[e], g.weight[e]]);
    expect(edges).toContainEqual([0, 0, 1, 1, 0, Math.fround(0.4)]);
    expect(edges).toContainEqual([1, 1, 3, 1, RESIDUAL, Math.fround(0.8)]);
    expect(edges).toContainEqual([2, 1, 3, 1, MLP, Math.fround(0.2)]);
    expect(g.heads.find((h) => h)).toEqual([0.3, 0.1]);
  });

  it("prunes further in the page: above 0.5 the MLP no longer reaches, so its input edge goes too", () => {
    const g = routesGraph(view);
    const p = prune(g, 0.5);
    expect([...p.kept].map((e) => `${g.srcRow[e]}>${g.dstRow[e]}`).sort()).toEqual(["0>1", "1>3"]);
    expect(p.reached[0 * 2 + 0]).toBe(0); // token a's embedding no longer reaches
    expect(p.reached[0 * 2 + 1]).toBe(1);
  });

  it("refuses a root that is not the prediction on the top row", () => {
    expect(() => routesGraph({ ...view, root: "mid/0/1" })).toThrow(/root/);
  });
});
