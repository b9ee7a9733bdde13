/** The experiments page: run folders under --runs; a sweep's curves, summary, pairs and a pair's rows and prompts
 * (traced and compared on the run's model at a click); a profile's summary; any table of a folder. */

import { ApiError, type Api } from "../api/client";
import { canvasOf, el, tableView } from "../dom";
import { exportButtons, type Draw } from "../export";
import type { UrlState } from "../state";
import { curvesLayout, drawCurves, experimentsTable, pairPromptsTable, pairTraceTarget, profileTable, rowsTable,
  sweepTable, type PairTraceTarget, type SweepPair } from "../views/experiments";

/** What a page needs from the app: the API, the URL state, a way to change it, the width it can use. */
export interface PageContext {
  api: Api;
  state: UrlState;
  navigate: (patch: Partial<UrlState>) => void;
  width: number;
  traced: () => void; // new runs were stored: lists of runs the app keeps are stale
}

const PAIR_COLUMNS = ["id", "category", "peak_layer", "peak_js", "mean_js", "top1_intended", "top1_contradictory"];
const PAIR_LAYER_COLUMNS = ["layer", "js", "bos_share_intended", "bos_share_contradictory", "expected_share_intended"];
const PAGE_ROWS = 200; // rows of a table query shown at once

/** A pair's prompts, and a button that traces both on the run's model and opens their comparison (or the line
 * that says why it cannot). */
function pairBox(ctx: PageContext, pair: SweepPair): HTMLElement {
  const box = el("div", undefined, "pair-prompts");
  tableView(box, pairPromptsTable(pair), `lmxray-sweep-prompts-${pair.run}-${pair.id}`);
  const target = pairTraceTarget(pair);
  if (!("model" in target)) {
    box.append(el("p", target.note, "muted note"));
    return box;
  }
  const button = box.appendChild(el("button", `trace both and compare on ${target.model}`));
  button.name = "trace-pair";
  if (target.note) box.append(el("p", target.note, "muted"));
  const status = box.appendChild(el("p", undefined, "muted"));
  button.onclick = async () => {
    button.disabled = true;
    try {
      const patch = await tracePair(ctx.api, target, (step) => (status.textContent = step));
      ctx.traced();
      ctx.navigate(patch);
    } catch (e) {
      status.textContent = e instanceof ApiError ? e.message : String((e as Error)?.message ?? e);
      status.setAttribute("role", "alert");
      button.disabled = false;
    }
  };
  return box;
}

/** Trace a pair's intended and then its contradictory prompt on ``t.model`` (a stored run answers at once) and the
 * URL state that compares them (A: intended, B: contradictory), keeping the experiment and pair for the way back. */
export async function tracePair(api: Api, t: PairTraceTarget, step: (what: string) => void = () => {}):
    Promise<Partial<UrlState>> {
  step("tracing the intended prompt…");
  const a = await api.trace(t.model, t.intended);
  step("tracing the contradictory prompt…");
  const b = await api.trace(t.model, t.contradictory);
  return { view: "compare", model: t.model, run: a.run_id, vs: b.run_id, align: t.align === "end" ? "end" : undefined,
    prompt: undefined, position: undefined, layer: undefined, head: undefined };
}

/** The experiments view: the run folders, or one sweep (curves, summary, pairs; a pair's per-layer rows) or
 * profile (per-corpus summary), and any of the folder's tables. */
export async function experimentsView(ctx: PageContext): Promise<HTMLElement> {
  const { api, state, navigate, width } = ctx;
  const list = await api.experiments();
  const wrap = el("div", undefined, "experiments");
  const controls = wrap.appendChild(el("div", undefined, "controls"));
  const pick = controls.appendChild(el("select"));
  pick.name = "experiment";
  pick.append(new Option("all run folders", ""));
  for (const e of list) pick.append(new Option(`${e.name} (${e.command})`, e.name, false, e.name === state.experiment));
  pick.onchange = () => navigate({ experiment: pick.value || undefined, pair: undefined, table: undefined });
  const chosen = list.find((e) => e.name === state.experiment);
  if (!chosen) {
    if (state.experiment) throw new ApiError(404, `no experiment ${JSON.stringify(state.experiment)} in the runs folder`,
      "pick one from the list (GET /api/experiments)");
    tableView(wrap, experimentsTable(list), "lmxray-experiments");
    return wrap;
  }
  const name = chosen.name;
  const summary = await api.experimentSummary(name);
  if (summary.command === "sweep") {
    const curves = await api.sweepCurves(name);
    const lay = curvesLayout(curves, Math.min(1000, Math.max(420, width)));
    const draw: Draw = (p) => drawCurves(p, curves, lay);
    controls.append(exportButtons(`lmxray-sweep-${name}`, () => ({ draw, width: lay.width, height: lay.height })));
    wrap.appendChild(canvasOf(draw, lay.width, lay.height)).setAttribute("aria-label", "sweep curves");
    tableView(wrap.appendChild(el("div", undefined, "summary")), sweepTable(summary), `lmxray-sweep-summary-${name}`);
    const pairs = await api.query(name, "pairs", { columns: PAIR_COLUMNS, limit: PAGE_ROWS });
    const box = wrap.appendChild(el("div", undefined, "pairs"));
    tableView(box, rowsTable("Pairs (click one for its per-layer rows)", pairs), `lmxray-sweep-pairs-${name}`);
    box.querySelectorAll("tbody tr").forEach((tr, i) => {
      const id = String(pairs.rows[i][0]);
      tr.classList.add("link");
      if (id === state.pair) tr.classList.add("selected");
      tr.addEventListener("click", () => navigate({ pair: id }));
    });
    if (state.pair) {
      const pair = await api.sweepPair(name, state.pair);
      wrap.appendChild(pairBox(ctx, pair));
      const rows = await api.query(name, "layers", { columns: PAIR_LAYER_COLUMNS,
        filters: [{ column: "id", op: "eq", value: state.pair }], limit: PAGE_ROWS });
      tableView(wrap.appendChild(el("div", undefined, "pair")), rowsTable(`Pair ${state.pair} by layer`, rows),
        `lmxray-sweep-pair-${name}-${state.pair}`);
    }
  } else {
    tableView(wrap.appendChild(el("div", undefined, "summary")), profileTable(summary), `lmxray-profile-${name}`);
  }
  const tables = controls.appendChild(el("select"));
  tables.name = "table";
  tables.append(new Option("browse a table…", ""));
  for (const t of chosen.tables) tables.append(new Option(`${t.name} (${t.n_rows} rows)`, t.name, false, t.name === state.table));
  tables.onchange = () => navigate({ table: tables.value || undefined });
  if (state.table) {
    const rows = await api.query(name, state.table, { limit: PAGE_ROWS });
    tableView(wrap.appendChild(el("div", undefined, "browse")), rowsTable(`${name}: ${state.table}`, rows),
      `lmxray-table-${name}-${state.table}`);
  }
  return wrap;
}
