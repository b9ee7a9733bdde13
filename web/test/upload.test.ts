import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api/client";
import { carriesFiles, traceFileOf } from "../src/upload";

const file = (name: string) => new File(["{}"], name);

describe("opening a trace file", () => {
  it("takes one file with a suffix the server reads, in any case", () => {
    for (const name of ["a.jsonl", "b.JSON", "c.safetensors"]) expect(traceFileOf([file(name)]).name).toBe(name);
  });

  it("refuses other suffixes and several files with the fix", () => {
    expect(() => traceFileOf([file("weights.bin")])).toThrow(ApiError);
    try {
      traceFileOf([file("weights.bin")]);
    } catch (e) {
      expect((e as ApiError).fix).toContain(".safetensors");
    }
    expect(() => traceFileOf([file("a.jsonl"), file("b.jsonl")])).toThrow("drop one trace file, not 2");
    expect(() => traceFileOf([])).toThrow("not 0");
  });

  it("reacts only to drags that carry files", () => {
    expect(carriesFiles(["Files"])).toBe(true);
    expect(carriesFiles(["text/plain", "text/uri-list"])).toBe(false);
  });
});
