import { describe, expect, it } from "vitest";
import { formatState, parseState, withState } from "../src/state";

describe("URL state", () => {
  it("round-trips every key in a fixed order", () => {
    const state = { view: "maps" as const, model: "builtin", prompt: "The capital of France is", run: "ab12",
      position: 5, layer: 3, head: 2, threshold: 0.05 };
    const url = formatState(state);
    expect(url).toBe("?view=maps&model=builtin&prompt=The+capital+of+France+is&run=ab12&position=5&layer=3&head=2&threshold=0.05");
    expect(parseState(url)).toEqual(state);
  });

  it("drops malformed or out-of-range values instead of guessing", () => {
    const s = parseState("?view=nope&position=-1&layer=1.5&head=x&threshold=0&run=");
    expect(s).toEqual({ view: "graph", model: undefined, prompt: undefined, run: undefined, position: undefined,
      layer: undefined, head: undefined, threshold: undefined });
    expect(parseState("?threshold=1.5").threshold).toBeUndefined();
    expect(parseState("?threshold=1").threshold).toBe(1);
    expect(parseState("?threshold=NaN").threshold).toBeUndefined();
  });

  it("leaves unset keys out, so equal states give equal URLs", () => {
    expect(formatState({ view: "graph" })).toBe("?view=graph");
    expect(formatState(withState({ view: "lens", head: 3 }, { head: undefined }))).toBe("?view=lens");
  });

  it("names the compared run and the alignment; an unknown alignment is dropped", () => {
    const url = formatState({ view: "compare", run: "a1", vs: "b2", align: "end" });
    expect(url).toBe("?view=compare&run=a1&vs=b2&align=end");
    expect(parseState(url)).toEqual({ view: "compare", run: "a1", vs: "b2", align: "end" });
    expect(parseState("?view=compare&align=middle").align).toBeUndefined();
  });

  it("keeps unicode and reserved characters in prompts", () => {
    const prompt = "Größe & 東京 = ?#%";
    expect(parseState(formatState({ view: "graph", prompt })).prompt).toBe(prompt);
  });
});
