import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api/client";
import { EmbeddedApi, SERVE_FIX, embeddedRun, type EmbeddedRun } from "../src/api/embedded";

const data = {
  format: "lmxray.explorer/1", run: { run_id: "embedded", model_name: "tiny", prompt: "a b" },
  summary: { prompt: "a b" }, lens: { "1": { position: 1 } }, maps: { "0": { layer: 0 } }, head_maps: {},
  notes: ["per-head maps left out"],
} as unknown as EmbeddedRun;

describe("the embedded API", () => {
  it("answers the views it carries, keyed as the server's routes", async () => {
    const api = new EmbeddedApi(data);
    expect(api.runId).toBe("embedded");
    expect(await api.runs()).toEqual([data.run]);
    expect(await api.models()).toEqual([]);
    expect(await api.lens("embedded", 1)).toBe(data.lens["1"]);
    expect(await api.map("embedded", 0)).toBe(data.maps["0"]);
  });

  it("says what is missing, and that a model needs lmxray serve", async () => {
    const api = new EmbeddedApi(data);
    await expect(api.lens("embedded", 0)).rejects.toThrow("no logit lens at position 0");
    await expect(api.headMaps("embedded", 0)).rejects.toMatchObject({ status: 422, fix: "per-head maps left out" });
    await expect(api.summary("other")).rejects.toMatchObject({ status: 404 });
    await expect(api.trace()).rejects.toMatchObject({ fix: SERVE_FIX });
    await expect(api.map("embedded", 0, 1)).rejects.toBeInstanceOf(ApiError);
  });

  it("refuses data of another format", () => {
    expect(embeddedRun(JSON.stringify(data)).run.run_id).toBe("embedded");
    expect(() => embeddedRun('{"format": "x"}')).toThrow("not an lmxray explorer run");
  });
});
