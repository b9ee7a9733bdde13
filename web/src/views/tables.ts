/** The convergence and lens tables, arranged from their view JSON. */

import type { LensView, TraceSummary } from "../api/views";
import { fmt } from "../scale";
import { tokenLabel } from "../graph/render";
import type { Table } from "./table";

/** ``TraceView``'s convergence rows: attention mass per key position at the prediction, largest first. */
export function convergenceTable(s: TraceSummary): Table {
  const rows = s.convergence ?? [];
  return {
    title: `Convergence at position ${s.position} (“${tokenLabel(s.tokens[s.position] ?? "")}” → “${s.predicted_text}”, p=${fmt(s.confidence)})`,
    columns: ["position", "token", "mass", "share", "status"],
    rows: rows.map((r) => [String(r.position), tokenLabel(r.token, 20), fmt(r.mass), fmt(r.share), r.status]),
    shade: rows.map((r) => r.share),
    note: s.convergence ? "mass: attention summed over layers and heads at the prediction position" : (s.note ?? undefined),
  };
}

/** ``LensView``'s rows: per layer the lens's top tokens and the final prediction's probability and rank. */
export function lensTable(v: LensView, top = 5): Table {
  const target = v.target_text ?? `#${v.target_id}`;
  const known = (t: { text: string | null; token_id: number }) => tokenLabel(t.text ?? `#${t.token_id}`, 14);
  return {
    title: `Logit lens at position ${v.position} (“${tokenLabel(v.token)}”), final prediction “${target}”`,
    columns: ["layer", "top-1", "p", `top ${top}`, `p(${tokenLabel(target, 10)})`, "rank"],
    rows: v.rows.map((r) => [
      `L${r.layer}`, r.top[0] ? known(r.top[0]) : "–", fmt(r.top[0]?.prob), r.top.slice(0, top).map(known).join(" "),
      fmt(r.target_prob), r.target_rank === null ? `>${r.top.length}` : String(r.target_rank)]),
    shade: v.rows.map((r) => r.target_prob),
    note: [v.first_top1 === null ? "never top-1" : `first top-1 at L${v.first_top1}`,
      v.settled === null ? "" : `settled from L${v.settled}`, v.rank_exact ? "" : "ranks beyond the stored top-k unknown"]
      .filter(Boolean).join("; "),
  };
}
