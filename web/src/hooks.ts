/** window.lmxray: what the page exposes to scripts and its browser tests: whether it is drawn, and the drawn views'
 * layouts (a node's or a cell's point, the graph's timings), so a test can point at what the page drew. */

import type { GraphTimings, GraphView } from "./graph/view";

declare global {
  interface Window {
    lmxray: {
      timings: GraphTimings | null;
      graph: GraphView | null;
      heads: { cell(pattern: string, row: number, head: number): { x: number; y: number } } | null;
      flow: { segments: { layer: number; source: number; height: number }[]; span: number } | null;
      maps: { vmax: number; heads: (number | null)[]; cell(map: number, q: number, k: number): { x: number; y: number } } | null;
      ready: boolean;
    };
  }
}

/** Set window.lmxray up empty: nothing drawn yet, not ready. */
export function installHooks(): void {
  window.lmxray = { timings: null, graph: null, maps: null, flow: null, heads: null, ready: false };
}
