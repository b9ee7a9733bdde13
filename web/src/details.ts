/** The side panel for a clicked graph node: the logit lens there and the kept edges into and out of it. */

import type { LensView } from "./api/views";
import { nodeEdges, type GraphData, type Pruned } from "./graph/model";
import { tokenLabel, type Selection } from "./graph/render";
import { fmt } from "./scale";

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

/** The node's heading and its edges; the lens rows are added by ``showLens`` once they arrive. */
export function nodePanel(g: GraphData, p: Pruned, s: Selection): HTMLElement {
  const panel = el("div", undefined, "node-details");
  const row = g.rows[s.row];
  const where = { embed: "embedding", mid: `after layer ${row.layer}'s attention`, mlp: `layer ${row.layer}'s MLP`,
    out: `after layer ${row.layer}` }[row.kind];
  panel.append(el("h3", `“${tokenLabel(g.tokens[s.token], 24)}” (position ${s.token}), ${where}`));
  const { incoming, outgoing } = nodeEdges(g, p, s.row, s.token);
  const list = (title: string, edges: number[], end: (e: number) => number) => {
    if (!edges.length) return;
    panel.append(el("h4", title));
    const ul = panel.appendChild(el("ul"));
    for (const e of edges.slice(0, 8)) ul.append(el("li", `${fmt(g.weight[e])}  “${tokenLabel(g.tokens[end(e)], 16)}” (${end(e)})`));
    if (edges.length > 8) panel.append(el("p", `and ${edges.length - 8} more`, "muted"));
  };
  list("from (below)", incoming, (e) => g.src[e]);
  const heads = incoming.map((e) => g.heads[e]).find((h) => h);
  if (heads) {
    panel.append(el("h4", "strongest incoming edge, per head"));
    const ul = panel.appendChild(el("ul", undefined, "heads"));
    heads.forEach((w, h) => ul.append(el("li", `head ${h}  ${fmt(w)}`)));
  }
  list("to (above)", outgoing, (e) => g.dst[e]);
  return panel;
}

/** Append the lens at the node's layer (the residual after it) to ``panel``. */
export function showLens(panel: HTMLElement, lens: LensView, layer: number | null): void {
  if (layer === null) {
    panel.append(el("p", "the lens reads layer outputs; this node has none", "muted"));
    return;
  }
  const row = lens.rows.find((r) => r.layer === layer);
  if (!row) {
    panel.append(el("p", `no lens at layer ${layer} in this trace`, "muted"));
    return;
  }
  panel.append(el("h4", `logit lens at L${layer}`));
  const ol = panel.appendChild(el("ol", undefined, "lens-top"));
  for (const t of row.top) ol.append(el("li", `${tokenLabel(t.text ?? `#${t.token_id}`, 16)}  ${fmt(t.prob)}`));
  const target = lens.target_text ?? `#${lens.target_id}`;
  const rank = row.target_rank === null ? `>${row.top.length}` : String(row.target_rank);
  panel.append(el("p", `final prediction “${tokenLabel(target, 16)}”: p=${fmt(row.target_prob)}, rank ${rank}`));
}
