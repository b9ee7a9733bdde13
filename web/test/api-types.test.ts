import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

describe("API types", () => {
  it("are the ones openapi-typescript makes from the server's openapi.json (else: npm run api-types)", () => {
    const out = join(mkdtempSync(join(tmpdir(), "lmxray-api-")), "types.ts");
    execFileSync("node_modules/.bin/openapi-typescript", ["../src/lmxray/server/openapi.json", "-o", out], { stdio: "ignore" });
    const committed = readFileSync("src/api/types.ts", "utf8");
    expect(committed === readFileSync(out, "utf8"), "src/api/types.ts drifted from openapi.json: run `npm run api-types` in web/").toBe(true);
  }, 60_000);
});
