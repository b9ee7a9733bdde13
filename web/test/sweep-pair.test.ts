import { describe, expect, it } from "vitest";
import type { Api, RunListing } from "../src/api/client";
import { tracePair } from "../src/pages/experiments";
import { formatState, parseState, withState } from "../src/state";
import { pairPromptsTable, pairTraceTarget, type PairTraceTarget, type SweepPair } from "../src/views/experiments";

const pair: SweepPair = {
  run: "sw", id: "capital_cities-00", category: "capital_cities", model: "/models/tiny", served: "/models/tiny",
  align: "end", recorded: true, intended: "Paris is the capital. The capital is",
  contradictory: "Lyon is the capital. The capital is", expected: "Paris", note: null,
};

describe("a sweep pair's prompts", () => {
  it("shows both prompts and the expected answer, dashes where the run recorded none", () => {
    expect(pairPromptsTable(pair).rows).toEqual([["intended", pair.intended], ["contradictory", pair.contradictory],
      ["expected", "Paris"]]);
    const old = { ...pair, recorded: false, intended: null, contradictory: null, expected: null };
    expect(pairPromptsTable(old).rows.map((r) => r[1])).toEqual(["–", "–", "–"]);
  });

  it("traces on the served model, compare aligned as the sweep was where it can be", () => {
    expect(pairTraceTarget(pair)).toEqual({ model: "/models/tiny", intended: pair.intended,
      contradictory: pair.contradictory, align: "end", note: "" });
    const tokens = pairTraceTarget({ ...pair, align: "tokens" }) as PairTraceTarget;
    expect(tokens.align).toBe("start");
    expect(tokens.note).toBe("the sweep aligned the prompts by tokens; compare aligns them at the start");
  });

  it("says why a pair cannot be traced, with the fix", () => {
    const note = "this run predates recorded prompts (...); rerun the sweep into the same folder with --fresh";
    expect(pairTraceTarget({ ...pair, recorded: false, intended: null, contradictory: null, note })).toEqual({ note });
    const unserved = (model: string) => (pairTraceTarget({ ...pair, model, served: null }) as { note: string }).note;
    expect(unserved("/models/big")).toBe(
      "this server does not serve /models/big, the run's model: start it with lmxray serve --model /models/big");
    expect(unserved("random:/models/tiny@seed0")).toContain("lmxray serve --model random:/models/tiny");
    expect(unserved("random:/models/tiny@seed3")).toContain("seed 0 only");
  });
});

describe("tracing a pair", () => {
  it("traces intended then contradictory and opens their comparison, keeping the way back", async () => {
    const calls: [string, string][] = [];
    const api = {
      trace: async (model: string, prompt: string): Promise<RunListing> => {
        calls.push([model, prompt]);
        return { run_id: `run${calls.length}`, model_name: "tiny", prompt };
      },
    } as unknown as Api;
    const steps: string[] = [];
    const patch = await tracePair(api, pairTraceTarget(pair) as PairTraceTarget, (s) => steps.push(s));
    expect(calls).toEqual([["/models/tiny", pair.intended], ["/models/tiny", pair.contradictory]]);
    expect(steps).toEqual(["tracing the intended prompt…", "tracing the contradictory prompt…"]);
    const before = parseState("?view=experiments&experiment=sw&pair=capital_cities-00&prompt=old&position=3");
    const url = formatState(withState(before, patch));
    expect(url).toBe("?view=compare&model=%2Fmodels%2Ftiny&run=run1&vs=run2&align=end&experiment=sw&pair=capital_cities-00");
    expect(parseState(url)).toEqual(withState(before, patch)); // the permalink reopens the same comparison
  });

  it("leaves compare at its default alignment when the sweep did not align at the end", async () => {
    const api = { trace: async (_m: string, prompt: string) => ({ run_id: prompt.slice(0, 4), model_name: "t", prompt }) };
    const patch = await tracePair(api as unknown as Api, pairTraceTarget({ ...pair, align: "start" }) as PairTraceTarget);
    expect(patch).toMatchObject({ view: "compare", run: "Pari", vs: "Lyon", align: undefined });
  });
});
