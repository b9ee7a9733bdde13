/** Scales: numbers to pixels and values to colours, shared by every view so one value always looks the same. */

export interface Linear {
  (value: number): number;
  invert(pixel: number): number;
}

/** A linear map from ``[d0, d1]`` to ``[r0, r1]`` (a zero-width domain maps everything to ``r0``). */
export function linear([d0, d1]: [number, number], [r0, r1]: [number, number]): Linear {
  const span = d1 - d0;
  const f = ((v: number) => (span === 0 ? r0 : r0 + ((v - d0) / span) * (r1 - r0))) as Linear;
  f.invert = (p: number) => (r1 === r0 ? d0 : d0 + ((p - r0) / (r1 - r0)) * span);
  return f;
}

// A sequential ramp from white through orange to dark red (perceptually ordered, prints in grey).
const STOPS: [number, number, number][] = [
  [255, 255, 255], [254, 224, 144], [253, 174, 97], [244, 109, 67], [215, 48, 39], [120, 0, 20],
];

/** Ramp position ``t`` in [0, 1] (clamped; NaN as 0) as ``[r, g, b]``. */
export function rampRgb(t: number): [number, number, number] {
  const x = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  const pos = x * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(pos));
  const f = pos - i;
  const [a, b] = [STOPS[i], STOPS[i + 1]];
  return [0, 1, 2].map((c) => Math.round(a[c] + (b[c] - a[c]) * f)) as [number, number, number];
}

/** ``value`` on the shared scale ``[0, vmax]`` as a CSS colour. */
export function color(value: number, vmax: number): string {
  const [r, g, b] = rampRgb(vmax > 0 ? value / vmax : 0);
  return `rgb(${r},${g},${b})`;
}

/** A value formatted for a label or a tooltip: 3 significant digits, exponent form for tiny ones. */
export function fmt(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (value !== 0 && Math.abs(value) < 1e-3) return value.toExponential(2);
  return Number(value.toPrecision(3)).toString();
}
