import { describe, expect, it } from "vitest";
import { SvgPainter } from "../src/paint";
import { BIAS_COLOR, SINK_COLOR, attributionTable, chosen, drawStack, sourceColor, stackLayout,
  type FlowData } from "../src/views/flow";

const layer = (i: number, shares: number[]) => ({ layer: i, attention: shares, mlp: shares, total: shares,
  attention_share: shares, mlp_share: shares, total_share: shares });

const view: FlowData = {
  model: "tiny", prompt: "a b c", tokens: ["a", " b", " c"], position: 2, sources: ["a", " b", " c", "bias"],
  max_error: 1e-6, confidence: 0.5, contrast: null,
  layers: [layer(0, [0.5, 0.25, 0.25, 0]), layer(1, [0.1, 0.2, 0.3, 0.4])],
  attribution: [
    { token_id: 5, text: " d", logit: 2, sum: 2, sink: 0.5, content: 1, bias: 0.5, contributions: [0.5, -1, 2, 0.5] },
    { token_id: 6, text: " e", logit: 1, sum: 1, sink: 0, content: 1, bias: 0, contributions: [0, 0.5, 0.5, 0] },
  ],
};

describe("flow", () => {
  it("stacks each layer's shares bottom up in source order, heights proportional, zero shares left out", () => {
    const lay = stackLayout(view, 400);
    const span = lay.bottom - lay.top;
    const l0 = lay.segments.filter((s) => s.layer === 0);
    expect(l0.map((s) => s.source)).toEqual([0, 1, 2]);
    expect(l0.map((s) => s.height / span)).toEqual([0.5, 0.25, 0.25]);
    expect(l0[0].y + l0[0].height).toBeCloseTo(lay.bottom);
    expect(l0[2].y).toBeCloseTo(lay.top);
    expect(lay.segments.filter((s) => s.layer === 1).length).toBe(4);
  });

  it("colours the sink and the bias apart from the content sources", () => {
    expect(sourceColor(0, 4)).toBe(SINK_COLOR);
    expect(sourceColor(3, 4)).toBe(BIAS_COLOR);
    expect(sourceColor(1, 4)).not.toBe(sourceColor(2, 4));
    const lay = stackLayout(view, 400);
    const p = new SvgPainter(lay.width, lay.height);
    drawStack(p, view, lay);
    expect(p.toString().match(new RegExp(`fill="${BIAS_COLOR}"`, "g"))?.length).toBe(1);
  });

  it("shows the named token's attribution, the prediction otherwise, the contrast when there is one", () => {
    expect(chosen(view)).toBe(view.attribution[0]);
    expect(chosen(view, " e")).toBe(view.attribution[1]);
    expect(chosen(view, "zzz")).toBe(view.attribution[0]);
    const contrast = { a: { token_id: 5, text: " d", logit: 2 }, b: { token_id: 6, text: " e", logit: 1 }, difference: 1,
      sum: 1, sink: 0.5, content: 0, bias: 0.5, contributions: [0.5, -1.5, 1.5, 0.5] };
    const t = attributionTable(view, chosen({ ...view, contrast }));
    expect(t.title).toBe("Attribution of logit(“ d”) − logit(“ e”) = 1");
    expect(t.rows[1]).toEqual(["·b", "-1.5", "-1"]);
  });

  it("lists every source's contribution and the sink / content / bias split", () => {
    const t = attributionTable(view, chosen(view));
    expect(t.rows.map((r) => r[1])).toEqual(["0.5", "-1", "2", "0.5"]);
    expect(t.shade).toEqual([0.25, 0.5, 1, 0.25]);
    expect(t.note).toBe("sum 2 = sink 0.5 + content 1 + bias 0.5; decomposition error ≤ 1.00e-6");
  });
});
