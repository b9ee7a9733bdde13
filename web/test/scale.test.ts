import { describe, expect, it } from "vitest";
import { color, fmt, linear, rampRgb } from "../src/scale";

describe("scales", () => {
  it("maps linearly both ways", () => {
    const s = linear([0, 10], [100, 200]);
    expect(s(0)).toBe(100);
    expect(s(2.5)).toBe(125);
    expect(s.invert(175)).toBe(7.5);
    const flat = linear([3, 3], [0, 50]);
    expect(flat(3)).toBe(0);
  });

  it("ramps from white to dark red, clamped, NaN as the bottom", () => {
    expect(rampRgb(0)).toEqual([255, 255, 255]);
    expect(rampRgb(1)).toEqual([120, 0, 20]);
    expect(rampRgb(2)).toEqual(rampRgb(1));
    expect(rampRgb(Number.NaN)).toEqual(rampRgb(0));
    const lum = (t: number) => rampRgb(t).reduce((a, b) => a + b, 0);
    for (let t = 0; t < 1; t += 0.05) expect(lum(t + 0.05)).toBeLessThanOrEqual(lum(t)); // darker as values grow
  });

  it("puts one value at one colour on a shared scale", () => {
    expect(color(0.5, 1)).toBe(color(1, 2));
    expect(color(3, 0)).toBe("rgb(255,255,255)");
  });

  it("formats 3 significant digits, tiny values in exponent form, missing as a dash", () => {
    expect(fmt(0.123456)).toBe("0.123");
    expect(fmt(1234.5)).toBe("1230");
    expect(fmt(0.00012345)).toBe("1.23e-4");
    expect(fmt(0)).toBe("0");
    expect(fmt(null)).toBe("–");
    expect(fmt(Number.POSITIVE_INFINITY)).toBe("–");
  });
});

describe("colours for raster dots", () => {
  it("reads #rgb and #rrggbb", async () => {
    const { hexRgb } = await import("../src/paint");
    expect(hexRgb("#555")).toEqual([85, 85, 85]);
    expect(hexRgb("#b2182b")).toEqual([178, 24, 43]);
  });
});
