import { describe, expect, it } from "vitest";
import { SvgPainter, escapeXml } from "../src/paint";
import { drawTable } from "../src/views/table";
import { lensTable, convergenceTable } from "../src/views/tables";
import type { LensView, TraceSummary } from "../src/api/views";

describe("SVG export", () => {
  it("escapes text, so a token can never inject markup", () => {
    expect(escapeXml(`<script>&"'`)).toBe("&lt;script&gt;&amp;&quot;&apos;");
    const p = new SvgPainter(10, 10);
    p.text(1, 2, "</text><script>alert(1)</script>");
    expect(p.toString()).not.toContain("<script>");
  });

  it("writes a standalone document with no external reference", () => {
    const p = new SvgPainter(120, 40);
    p.rect(0, 0, 10, 10, "#fff", "#000");
    p.lines(new Float32Array([0, 0, 5, 5, 1, 1, 2, 2]), 2, "red", 1, 0.5);
    p.circle(3, 3, 2, "#555");
    const svg = p.toString();
    expect(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>')).toBe(true);
    expect(svg.match(/<line /g)?.length).toBe(2);
    expect(svg.replace('xmlns="http://www.w3.org/2000/svg"', "")).not.toMatch(/https?:|url\(|href/);
  });
});

const summary: TraceSummary = {
  model: { name: "tiny", n_layers: 2, n_heads: 4, architecture: "llama", source: "hf-dir", sha256: null, n_kv_heads: 2,
    d_model: 32, vocab_size: 98, dtype: "float32" },
  expected_attention: {}, out: null, prompt: "ab", tokens: ["a", "b"], token_ids: [1, 2], position: 1, predicted_token: 3, predicted_text: "c",
  confidence: 0.5, top_k: [], summary: null, note: null,
  convergence: [{ position: 0, token: "a", mass: 6, share: 0.75, status: "" },
    { position: 1, token: "b", mass: 2, share: 0.25, status: "" }],
};

const lens: LensView = {
  model: "tiny", prompt: "ab", position: 1, token: "b", target_id: 3, target_text: "c", first_top1: 1, settled: 1,
  rank_exact: false,
  rows: [{ layer: 0, top: [{ token_id: 9, text: null, prob: 0.4 }], target_prob: 0.1, target_rank: null },
    { layer: 1, top: [{ token_id: 3, text: "c", prob: 0.5 }], target_prob: 0.5, target_rank: 1 }],
};

describe("tables from view JSON", () => {
  it("convergence rows keep the view's order and numbers", () => {
    const t = convergenceTable(summary);
    expect(t.rows).toEqual([["0", "a", "6", "0.75", ""], ["1", "b", "2", "0.25", ""]]);
    expect(t.shade).toEqual([0.75, 0.25]);
  });

  it("lens rows name unknown tokens by id and unknown ranks as beyond the top-k", () => {
    const t = lensTable(lens);
    expect(t.rows[0]).toEqual(["L0", "#9", "0.4", "#9", "0.1", ">1"]);
    expect(t.rows[1]).toEqual(["L1", "c", "0.5", "c", "0.5", "1"]);
    expect(t.note).toContain("first top-1 at L1");
    expect(t.note).toContain("ranks beyond the stored top-k unknown");
  });

  it("draws every cell into the SVG", () => {
    const p = new SvgPainter(400, 200);
    drawTable(p, lensTable(lens));
    const svg = p.toString();
    for (const cell of ["L0", "#9", "&gt;1", "L1"]) expect(svg).toContain(`>${cell}</text>`);
  });
});
