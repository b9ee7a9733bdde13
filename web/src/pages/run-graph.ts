/** A run's graph view: its edges are attention weights (every layer's head-summed map) or information-flow routes
 * (a server job, pruned there); a threshold slider prunes further, and a clicked node shows the lens there. */

import { ApiError, finished } from "../api/client";
import type { LensView, MapView, TraceSummary } from "../api/views";
import type { App } from "../app";
import { nodePanel, showLens } from "../details";
import { el } from "../dom";
import { exportButtons } from "../export";
import { attentionGraph, type GraphData } from "../graph/model";
import { routesGraph } from "../graph/routes";
import { GraphView } from "../graph/view";
import { fmt } from "../scale";
import { DEFAULT_THRESHOLD } from "../state";

const ATTENTION_FLOOR = 0.005; // attention edges below this weight are not drawn at any threshold
const ATTENTION_GRAPH_MAX_TOKENS = 512; // past this the graph's default edges are routes (sparse, pruned by the server)
const ROUTES_FLOOR = 0.01; // routes are asked for at this threshold; the slider prunes further in the page

/** The graph of ``run`` into its position (the URL's or the prediction's), or null when the page moved on. */
export async function graphView(app: App, run: string, s: TraceSummary, stale: () => boolean): Promise<HTMLElement | null> {
  const position = Math.min(app.state.position ?? s.position, s.tokens.length - 1);
  const long = s.tokens.length > ATTENTION_GRAPH_MAX_TOKENS;
  const source = app.state.source ?? (long ? "routes" : "attention");
  if (source === "attention" && long)
    throw new ApiError(0, `the attention graph of ${s.tokens.length} tokens would load every layer's full map ` +
      `(${s.model.n_layers} × ${s.tokens.length}² weights)`, "use the routes graph: source=routes in the URL");
  const loaded = source === "routes" ? await routesOf(app, s, position) : await attentionOf(app, run, s, position);
  if (stale()) return null;
  const started = performance.now();
  const g = loaded.build();
  const wrap = el("div");
  const pick = el("select");
  pick.name = "source";
  pick.append(new Option("edges: attention weights", "attention", false, source === "attention"),
    new Option("edges: information-flow routes", "routes", false, source === "routes"));
  pick.onchange = () => app.navigate({ source: pick.value === "routes" ? "routes" : "attention" });
  const side = app.panes.side;
  const view: GraphView = new GraphView(g, {
    threshold: Math.max(loaded.floor, app.state.threshold ?? DEFAULT_THRESHOLD),
    floor: loaded.floor,
    onThreshold: (t) => app.amend({ threshold: t }),
    onSelect: (sel) => {
      side.replaceChildren();
      if (!sel) return;
      const panel = side.appendChild(nodePanel(g, view.current, sel));
      const row = g.rows[sel.row];
      app.cached(`lens:${run}:${sel.token}`, () => app.api.lens(run, sel.token))
        .then((lens) => showLens(panel, lens as LensView, row.kind === "out" ? row.layer : null))
        .catch((e) => app.showError(e));
    },
  }, started);
  wrap.append(pick, exportButtons(`lmxray-graph-${run}`, () => view.snapshot()), view.element);
  if (loaded.note) wrap.append(el("p", loaded.note, "muted"));
  window.lmxray.graph = view;
  window.lmxray.timings = view.timings;
  return wrap;
}

/** Graph data as it arrives, and how to build the graph from it (timed from there: the data is in). */
interface Loaded {
  build: () => GraphData;
  floor: number; // the lowest threshold the data supports
  note: string;
}

/** Every layer's head-summed map of the run (a layer the trace lacks is left out and said). */
async function attentionOf(app: App, run: string, s: TraceSummary, position: number): Promise<Loaded> {
  const layers = [...Array(s.model.n_layers).keys()];
  const settled = await Promise.allSettled(layers.map((l) => app.cached(`map:${run}:${l}`, () => app.api.map(run, l))));
  const maps = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value as MapView] : []));
  if (!maps.length) throw (settled[0] as PromiseRejectedResult).reason;
  const missing = layers.length - maps.length;
  return { build: () => attentionGraph(s.tokens, maps, s.model.n_heads, position), floor: ATTENTION_FLOOR,
    note: missing ? `${missing} layers have no map in this trace` : "" };
}

/** The routes into ``position`` from a server job (progress shown while it runs), pruned at ROUTES_FLOOR. */
async function routesOf(app: App, s: TraceSummary, position: number): Promise<Loaded> {
  const model = await app.servedModel();
  const progress = app.jobProgress("routes");
  const data = await app.cached(`routes:${model}:${s.prompt}:${position}`, async () =>
    finished(app.api, await app.api.startRoutes(model, s.prompt, position, ROUTES_FLOOR), progress));
  return { build: () => routesGraph(data), floor: data.threshold,
    note: `routes by ${model}, edge importance as in Ferrando & Voita (2024); pruned at ${fmt(data.threshold)} by the server` };
}
