/** The explorer page: prompt bar, view tabs and the current view, all driven by the URL's query string. */

import "./style.css";
import { ApiError, HttpApi, finished, type Api } from "./api/client";
import { EmbeddedApi, embeddedRun } from "./api/embedded";
import type { Job, LensView, MapView, TraceSummary } from "./api/views";
import { nodePanel, showLens } from "./details";
import { exportButtons, type Draw } from "./export";
import { attentionGraph, type GraphData } from "./graph/model";
import { routesGraph } from "./graph/routes";
import { GraphView, type GraphTimings } from "./graph/view";
import { fmt } from "./scale";
import { DEFAULT_STEPS, DEFAULT_THRESHOLD, VIEWS, formatState, parseState, withState, type UrlState } from "./state";
import { tokenLabel } from "./graph/render";
import { cellCentre, drawMaps, hitCell, mapsLayout, type MapsInput } from "./views/maps";
import { convergenceTable, lensTable } from "./views/tables";
import { carriesFiles, traceFileOf } from "./upload";
import { attributionTable, chosen, drawStack, stackLayout } from "./views/flow";
import { cellOrigin, describe, drawHeads, headsLayout, hitHead, topTable } from "./views/heads";
import { experimentsView } from "./pages/experiments";
import { canvasOf, el, tableView } from "./dom";
import { drawTrace, logitsTable, traceLayout } from "./views/logits";
import { chartLayout, drawChart, layerTable, metricsTable } from "./views/compare";

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

const embedded = document.getElementById("lmxray-data"); // a report or widget carries its run; a served page asks
const api: Api = embedded ? new EmbeddedApi(embeddedRun(embedded.textContent ?? "")) : servedApi();

function servedApi(): Api {
  const token = new URLSearchParams(location.search).get("token") ?? sessionStorage.getItem("lmxray-token");
  if (token) sessionStorage.setItem("lmxray-token", token);
  return new HttpApi(new URL("api/", new URL(".", document.baseURI)), token);
}
window.lmxray = { timings: null, graph: null, maps: null, flow: null, heads: null, ready: false };

const ATTENTION_FLOOR = 0.005; // attention edges below this weight are not drawn at any threshold
const ATTENTION_GRAPH_MAX_TOKENS = 512; // past this the graph's default edges are routes (sparse, pruned by the server)
const ROUTES_FLOOR = 0.01; // routes are asked for at this threshold; the slider prunes further in the page

let state: UrlState = withDefaultRun(parseState(location.search));

/** An embedded page opens on its own run, in its own start view. */
function withDefaultRun(s: UrlState): UrlState {
  if (!(api instanceof EmbeddedApi)) return s;
  const view = new URLSearchParams(location.search).has("view") ? s.view : api.startView ?? s.view;
  return withState(s, { view, run: s.run ?? (s.prompt ? undefined : api.runId) });
}
let renderId = 0;
const cache = new Map<string, Promise<unknown>>();

function cached<T>(key: string, load: () => Promise<T>): Promise<T> {
  if (!cache.has(key)) cache.set(key, load().catch((e) => { cache.delete(key); throw e; }));
  return cache.get(key) as Promise<T>;
}

const app = document.getElementById("app")!;
const header = app.appendChild(el("header"));
const tabs = app.appendChild(el("nav", undefined, "tabs"));
const errors = app.appendChild(el("div", undefined, "errors"));
const body = app.appendChild(el("div", undefined, "body"));
const main = body.appendChild(el("main"));
const side = body.appendChild(el("aside"));

function navigate(patch: Partial<UrlState>, replace = false): void {
  state = withState(state, patch);
  remember(replace);
  void render();
}

/** Put the state in the address bar; a page without one (a notebook's srcdoc frame) keeps it in memory only. */
function remember(replace: boolean): void {
  try {
    history[replace ? "replaceState" : "pushState"](null, "", formatState(state) || location.pathname);
  } catch {
    // about:srcdoc refuses history URLs: the view still changes, it just has no permalink there
  }
}

window.addEventListener("popstate", () => {
  state = withDefaultRun(parseState(location.search));
  void render();
});

function showError(e: unknown): void {
  const box = errors.appendChild(el("div", undefined, "error"));
  box.setAttribute("role", "alert");
  box.append(el("strong", e instanceof ApiError ? e.problem : String((e as Error)?.message ?? e)));
  if (e instanceof ApiError && e.fix) box.append(el("div", e.fix, "fix"));
}

function buildHeader(): void {
  header.replaceChildren(el("span", "lmxray", "brand"));
  const form = header.appendChild(el("form", undefined, "prompt-bar"));
  const model = form.appendChild(el("select"));
  model.name = "model";
  model.title = "model";
  const prompt = form.appendChild(el("input"));
  Object.assign(prompt, { name: "prompt", type: "text", placeholder: "Type a prompt", value: state.prompt ?? "" });
  form.appendChild(el("button", "Run")).type = "submit";
  form.onsubmit = (ev) => {
    ev.preventDefault();
    if (!prompt.value.trim()) return;
    navigate({ prompt: prompt.value, model: model.value || undefined, run: undefined, position: undefined,
      layer: undefined, head: undefined });
  };
  cached("models", () => api.models()).then((models) => {
    for (const m of models) model.append(new Option(m.info ? `${m.spec} (${m.info.name})` : m.spec, m.spec));
    if (state.model) model.value = state.model;
  }).catch(showError);
  const recent = header.appendChild(el("select", undefined, "recent"));
  recent.title = "recent runs";
  recent.append(new Option("recent runs", ""));
  cached("runs", () => api.runs()).then((runs) => {
    for (const r of runs.slice(0, 30)) recent.append(new Option(`${r.model_name}: ${r.prompt.slice(0, 60)}`, r.run_id));
  }).catch(showError);
  recent.onchange = () => recent.value && navigate({ run: recent.value, prompt: undefined, position: undefined });
  const open = header.appendChild(el("label", "open trace…", "open-file"));
  open.title = "Open a trace file (lmxray .jsonl or .safetensors, rocmforge .jsonl), or drop it on the page";
  const file = open.appendChild(el("input"));
  Object.assign(file, { type: "file", name: "trace-file", accept: ".jsonl,.json,.safetensors", hidden: true });
  file.onchange = () => file.files && void openTraceFile(file.files);
}

/** Upload a dropped or picked trace file and show it as a run (errors in the error panel, with the fix). */
async function openTraceFile(files: ArrayLike<File>): Promise<void> {
  errors.replaceChildren();
  try {
    const chosen = traceFileOf(files);
    main.replaceChildren(el("p", `Opening ${chosen.name}…`, "muted"));
    const record = await api.upload(chosen);
    cache.delete("runs");
    navigate({ run: record.run_id, prompt: undefined, position: undefined, vs: undefined,
      view: state.view === "experiments" ? "graph" : state.view });
  } catch (e) {
    showError(e);
  }
}

document.addEventListener("dragover", (ev) => {
  if (!ev.dataTransfer || !carriesFiles([...ev.dataTransfer.types])) return;
  ev.preventDefault();
  document.body.classList.add("dropping");
});
document.addEventListener("dragleave", () => document.body.classList.remove("dropping"));
document.addEventListener("drop", (ev) => {
  document.body.classList.remove("dropping");
  if (!ev.dataTransfer || !carriesFiles([...ev.dataTransfer.types])) return;
  ev.preventDefault();
  void openTraceFile(ev.dataTransfer.files);
});

function buildTabs(): void {
  tabs.replaceChildren(...VIEWS.map((v) => {
    const a = el("a", v, v === state.view ? "active" : undefined);
    a.href = formatState(withState(state, { view: v }));
    a.onclick = (ev) => { ev.preventDefault(); navigate({ view: v }); };
    return a;
  }));
}

async function render(): Promise<void> {
  const id = ++renderId;
  const stale = () => id !== renderId;
  window.lmxray.ready = false;
  buildTabs();
  errors.replaceChildren();
  side.replaceChildren();
  try {
    if (state.view === "experiments") {
      main.replaceChildren(el("p", "Loading…", "muted"));
      const content = await experimentsView({ api, state, navigate, width: main.clientWidth || 900,
        traced: () => cache.delete("runs") });
      if (stale()) return;
      main.replaceChildren(content);
      window.lmxray.ready = true;
      return;
    }
    if (!state.run && state.prompt) {
      main.replaceChildren(el("p", "Tracing…", "muted"));
      const model = await servedModel();
      const record = await api.trace(model, state.prompt);
      cache.delete("runs");
      if (stale()) return;
      state = withState(state, { run: record.run_id });
      remember(true);
    }
    if (!state.run) {
      main.replaceChildren(el("p", "Type a prompt and press Run, or open a recent run.", "muted"));
      window.lmxray.ready = true;
      return;
    }
    const run = state.run;
    main.replaceChildren(el("p", "Loading…", "muted"));
    const summary = await cached(`summary:${run}`, () => api.summary(run));
    if (stale()) return;
    const input = header.querySelector<HTMLInputElement>("input[name=prompt]");
    if (input && !input.value) input.value = summary.prompt;
    const content = await VIEW_RENDERERS[state.view as RunView](run, summary, stale);
    if (stale() || !content) return;
    main.replaceChildren(runHeading(summary), content);
  } catch (e) {
    if (stale()) return;
    main.replaceChildren();
    showError(e);
  }
  window.lmxray.ready = true;
}

function runHeading(s: TraceSummary): HTMLElement {
  const h = el("div", undefined, "run-heading");
  h.append(el("span", s.model.name, "model-name"), el("span", ` “${s.prompt}” → `),
    el("strong", `“${s.predicted_text}”`), el("span", ` p=${fmt(s.confidence)}`));
  return h;
}

type Renderer = (run: string, s: TraceSummary, stale: () => boolean) => Promise<HTMLElement | null>;

type RunView = Exclude<UrlState["view"], "experiments">; // the views of one run (experiments is drawn before a run)

const VIEW_RENDERERS: Record<RunView, Renderer> = {
  async graph(run, s, stale) {
    const position = Math.min(state.position ?? s.position, s.tokens.length - 1);
    const long = s.tokens.length > ATTENTION_GRAPH_MAX_TOKENS;
    const source = state.source ?? (long ? "routes" : "attention");
    if (source === "attention" && long)
      throw new ApiError(0, `the attention graph of ${s.tokens.length} tokens would load every layer's full map ` +
        `(${s.model.n_layers} × ${s.tokens.length}² weights)`, "use the routes graph: source=routes in the URL");
    const loaded = source === "routes" ? await routesOf(s, position) : await attentionOf(run, s, position);
    if (stale()) return null;
    const started = performance.now();
    const g = loaded.build();
    const wrap = el("div");
    const pick = el("select");
    pick.name = "source";
    pick.append(new Option("edges: attention weights", "attention", false, source === "attention"),
      new Option("edges: information-flow routes", "routes", false, source === "routes"));
    pick.onchange = () => navigate({ source: pick.value === "routes" ? "routes" : "attention" });
    const view: GraphView = new GraphView(g, {
      threshold: Math.max(loaded.floor, state.threshold ?? DEFAULT_THRESHOLD),
      floor: loaded.floor,
      onThreshold: (t) => {
        state = withState(state, { threshold: t });
        remember(true);
      },
      onSelect: (sel) => {
        side.replaceChildren();
        if (!sel) return;
        const panel = side.appendChild(nodePanel(g, view.current, sel));
        const row = g.rows[sel.row];
        cached(`lens:${run}:${sel.token}`, () => api.lens(run, sel.token))
          .then((lens) => showLens(panel, lens as LensView, row.kind === "out" ? row.layer : null))
          .catch(showError);
      },
    }, started);
    wrap.append(pick, exportButtons(`lmxray-graph-${run}`, () => view.snapshot()), view.element);
    if (loaded.note) wrap.append(el("p", loaded.note, "muted"));
    window.lmxray.graph = view;
    window.lmxray.timings = view.timings;
    return wrap;
  },

  async maps(run, s, stale) {
    const layer = Math.min(state.layer ?? s.model.n_layers - 1, s.model.n_layers - 1);
    let input: MapsInput;
    let note = "";
    if (state.head !== undefined) {
      const m = await cached(`map:${run}:${layer}:${state.head}`, () => api.map(run, layer, state.head));
      input = { tokens: m.tokens, layer: m.layer, heads: [m.head], values: [m.values], vmax: m.vmax };
    } else {
      try {
        const hm = await cached(`heads:${run}:${layer}`, () => api.headMaps(run, layer));
        input = { tokens: hm.tokens, layer: hm.layer, heads: hm.heads, values: hm.values, vmax: hm.vmax };
      } catch (e) {
        if (!(e instanceof ApiError) || e.status >= 500 || e.status === 0) throw e;
        const m = await cached(`map:${run}:${layer}`, () => api.map(run, layer));
        input = { tokens: m.tokens, layer: m.layer, heads: [null], values: [m.values], vmax: m.vmax };
        note = `per-head maps: ${e.message}`;
      }
    }
    if (stale()) return null;
    const wrap = el("div", undefined, "maps");
    const controls = wrap.appendChild(el("div", undefined, "controls"));
    const pick = controls.appendChild(el("select"));
    pick.name = "layer";
    for (let l = 0; l < s.model.n_layers; l++) pick.append(new Option(`layer ${l}`, String(l), false, l === layer));
    pick.onchange = () => navigate({ layer: Number(pick.value) });
    const width = Math.max(320, main.clientWidth || 900);
    const longest = Math.max(...input.tokens.map((t) => tokenLabel(t, 10).length));
    const lay = mapsLayout(input.values.length, input.tokens.length, width, undefined, longest);
    const draw: Draw = (p) => drawMaps(p, input, lay);
    controls.append(exportButtons(`lmxray-maps-${run}-L${layer}`, () => ({ draw, width: lay.width, height: lay.height })));
    if (note) wrap.append(el("p", note, "muted"));
    const canvas = wrap.appendChild(canvasOf(draw, lay.width, lay.height));
    const tip = wrap.appendChild(el("div", undefined, "tooltip"));
    canvas.onmousemove = (ev) => {
      const hit = hitCell(lay, input.values.length, ev.offsetX, ev.offsetY);
      tip.hidden = !hit || hit.k > hit.q;
      if (!hit || hit.k > hit.q) return;
      const head = input.heads[hit.map];
      tip.textContent = `${head === null ? "sum" : `head ${head}`}: “${tokenLabel(input.tokens[hit.q])}” (${hit.q}) → ` +
        `“${tokenLabel(input.tokens[hit.k])}” (${hit.k}) = ${fmt(input.values[hit.map][hit.q][hit.k])}`;
      Object.assign(tip.style, { left: `${ev.offsetX + 14}px`, top: `${ev.offsetY + 14}px` });
    };
    canvas.onmouseleave = () => (tip.hidden = true);
    window.lmxray.maps = { vmax: input.vmax, heads: input.heads, cell: (map, q, k) => cellCentre(lay, map, q, k) };
    return wrap;
  },

  async lens(run, s) {
    const position = Math.min(state.position ?? s.position, s.tokens.length - 1);
    const lens = await cached(`lens:${run}:${position}`, () => api.lens(run, position));
    const wrap = el("div");
    const pick = wrap.appendChild(el("select"));
    pick.name = "position";
    s.tokens.forEach((t, i) => pick.append(new Option(`${i}: ${tokenLabel(t)}`, String(i), false, i === position)));
    pick.onchange = () => navigate({ position: Number(pick.value) });
    return tableView(wrap, lensTable(lens), `lmxray-lens-${run}-${position}`);
  },

  async convergence(run, s) {
    return tableView(el("div"), convergenceTable(s), `lmxray-convergence-${run}`);
  },

  async logits(run, s, stale) {
    const model = await servedModel();
    const steps = state.steps ?? DEFAULT_STEPS;
    const position = Math.min(state.position ?? s.position, s.tokens.length - 1);
    const lens = cached(`lens:${run}:${position}`, () => api.lens(run, position));
    const progress = jobProgress("logits");
    const v = await cached(`logits:${model}:${s.prompt}:${steps}`, async () =>
      finished(api, await api.startLogits(model, s.prompt, steps), progress));
    if (stale()) return null;
    const wrap = el("div", undefined, "logits");
    const controls = wrap.appendChild(el("div", undefined, "controls"));
    const pick = controls.appendChild(el("select"));
    pick.name = "steps";
    for (const n of new Set([1, 4, 8, 16, 32, 64, steps].sort((a, b) => a - b)))
      pick.append(new Option(`${n} steps`, String(n), false, n === steps));
    pick.onchange = () => navigate({ steps: Number(pick.value) });
    const lay = traceLayout(v, Math.min(900, Math.max(360, main.clientWidth || 900)));
    const draw: Draw = (p) => drawTrace(p, v, lay);
    controls.append(exportButtons(`lmxray-logits-${run}-${steps}`, () => ({ draw, width: lay.width, height: lay.height })));
    wrap.appendChild(canvasOf(draw, lay.width, lay.height)).setAttribute("aria-label", "generation logit trace");
    tableView(wrap.appendChild(el("div", undefined, "trace")), logitsTable(v), `lmxray-logits-table-${run}-${steps}`);
    try {
      const lensView = await lens;
      tableView(wrap.appendChild(el("div", undefined, "lens")), lensTable(lensView), `lmxray-lens-${run}-${position}`);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status >= 500 || e.status === 0) throw e;
      wrap.append(el("p", `logit lens: ${e.message}`, "muted"));
    }
    return stale() ? null : wrap;
  },

  async flow(run, s, stale) {
    const model = await servedModel();
    const position = Math.min(state.position ?? s.position, s.tokens.length - 1);
    const tokens = state.token ? [state.token] : [];
    const progress = jobProgress("flow");
    const v = await cached(`flow:${model}:${s.prompt}:${position}:${state.token ?? ""}:${state.versus ?? ""}`, async () =>
      finished(api, await api.startFlow(model, s.prompt, position, tokens, state.versus), progress));
    if (stale()) return null;
    const wrap = el("div", undefined, "flow");
    const controls = wrap.appendChild(el("form", undefined, "controls"));
    const pos = controls.appendChild(el("select"));
    pos.name = "position";
    s.tokens.forEach((t, i) => pos.append(new Option(`${i}: ${tokenLabel(t)}`, String(i), false, i === position)));
    const tok = controls.appendChild(el("input"));
    Object.assign(tok, { name: "token", placeholder: `token (${s.predicted_text})`, value: state.token ?? "", size: 10 });
    const vs = controls.appendChild(el("input"));
    Object.assign(vs, { name: "versus", placeholder: "versus token", value: state.versus ?? "", size: 10 });
    controls.appendChild(el("button", "Attribute")).type = "submit";
    controls.onsubmit = (ev) => {
      ev.preventDefault();
      navigate({ position: Number(pos.value), token: tok.value || undefined, versus: vs.value || undefined });
    };
    const lay = stackLayout(v, Math.min(900, Math.max(360, main.clientWidth || 900)));
    const draw: Draw = (p) => drawStack(p, v, lay);
    const bar = wrap.appendChild(el("div", undefined, "controls"));
    bar.append(exportButtons(`lmxray-flow-${run}-${position}`, () => ({ draw, width: lay.width, height: lay.height })));
    wrap.appendChild(canvasOf(draw, lay.width, lay.height)).setAttribute("aria-label", "flow by source");
    window.lmxray.flow = { segments: lay.segments, span: lay.bottom - lay.top };
    const a = chosen(v, state.token);
    tableView(wrap.appendChild(el("div", undefined, "attribution")), attributionTable(v, a),
      `lmxray-attribution-${run}-${position}`);
    return wrap;
  },

  async heads(_run, s, stale) {
    const model = await servedModel();
    const baseline = state.baseline ?? "random";
    const progress = jobProgress("heads");
    const v = await cached(`heads-job:${model}:${baseline}`, async () =>
      finished(api, await api.startHeads(model, baseline), progress));
    if (stale()) return null;
    const wrap = el("div", undefined, "heads");
    const controls = wrap.appendChild(el("div", undefined, "controls"));
    const pick = controls.appendChild(el("select"));
    pick.name = "baseline";
    pick.append(new Option("z-scores against random-init twins", "random", false, baseline === "random"),
      new Option("no baseline (scores only)", "none", false, baseline === "none"));
    pick.onchange = () => navigate({ baseline: pick.value === "none" ? "none" : undefined });
    const lay = headsLayout(v, Math.max(320, main.clientWidth || 900));
    const draw: Draw = (p) => drawHeads(p, v, lay);
    controls.append(exportButtons(`lmxray-heads-${baseline}`, () => ({ draw, width: lay.width, height: lay.height })));
    const grid = el("div", undefined, "grid");
    const canvas = grid.appendChild(canvasOf(draw, lay.width, lay.height));
    canvas.setAttribute("aria-label", "head scores");
    canvas.style.cursor = "pointer";
    const tip = grid.appendChild(el("div", undefined, "tooltip"));
    tip.hidden = true;
    canvas.onmousemove = (ev) => {
      const hit = hitHead(lay, ev.offsetX, ev.offsetY);
      tip.hidden = !hit;
      if (!hit) return;
      tip.textContent = `${describe(v, hit)} — click for its map`;
      Object.assign(tip.style, { left: `${ev.offsetX + 14}px`, top: `${ev.offsetY + 14}px` });
    };
    canvas.onmouseleave = () => (tip.hidden = true);
    canvas.onclick = (ev) => {
      const hit = hitHead(lay, ev.offsetX, ev.offsetY);
      if (hit && hit.head < s.model.n_heads) navigate({ view: "maps", layer: v.layers[hit.row], head: hit.head });
    };
    window.lmxray.heads = { cell: (pattern, row, head) => {
      const { x, y } = cellOrigin(lay, { pattern, row, head });
      return { x: x + lay.cell / 2, y: y + lay.cell / 2 };
    } };
    wrap.append(grid);
    tableView(wrap.appendChild(el("div", undefined, "top")), topTable(v), `lmxray-heads-top-${baseline}`);
    return wrap;
  },

  async compare(run, _s, stale) {
    const runs = await cached("runs", () => api.runs());
    const wrap = el("div", undefined, "compare");
    const controls = wrap.appendChild(el("div", undefined, "controls"));
    const pick = controls.appendChild(el("select"));
    pick.name = "vs";
    pick.append(new Option("compare with…", ""));
    for (const r of runs.filter((r) => r.run_id !== run).slice(0, 30))
      pick.append(new Option(`${r.model_name}: ${r.prompt.slice(0, 60)}`, r.run_id, false, r.run_id === state.vs));
    pick.onchange = () => pick.value && navigate({ vs: pick.value });
    const align = controls.appendChild(el("select"));
    align.name = "align";
    for (const a of ["start", "end"]) align.append(new Option(`aligned at the ${a}`, a, false, a === (state.align ?? "start")));
    align.onchange = () => navigate({ align: align.value === "end" ? "end" : undefined });
    if (!state.vs) {
      wrap.append(el("p", "Pick a second run to compare with this one.", "muted"));
      return wrap;
    }
    const vs = state.vs;
    const v = await cached(`compare:${run}:${vs}:${state.align ?? "start"}`, () => api.compare(run, vs, state.align ?? "start"));
    if (stale()) return null;
    const lay = chartLayout(v.layers, Math.min(900, Math.max(360, main.clientWidth || 900)));
    const draw: Draw = (p) => drawChart(p, v.layers, lay);
    controls.append(exportButtons(`lmxray-compare-${run}-${vs}`, () => ({ draw, width: lay.width, height: lay.height })));
    const chart = wrap.appendChild(canvasOf(draw, lay.width, lay.height));
    chart.setAttribute("aria-label", "per-layer divergence");
    tableView(wrap.appendChild(el("div", undefined, "layers")), layerTable(v), `lmxray-compare-layers-${run}-${vs}`);
    tableView(wrap.appendChild(el("div", undefined, "metrics")), metricsTable(v), `lmxray-compare-metrics-${run}-${vs}`);
    return wrap;
  },
};

/** Graph data as it arrives, and how to build the graph from it (timed from there: the data is in). */
interface Loaded {
  build: () => GraphData;
  floor: number; // the lowest threshold the data supports
  note: string;
}

/** Every layer's head-summed map of the run (a layer the trace lacks is left out and said). */
async function attentionOf(run: string, s: TraceSummary, position: number): Promise<Loaded> {
  const layers = [...Array(s.model.n_layers).keys()];
  const settled = await Promise.allSettled(layers.map((l) => cached(`map:${run}:${l}`, () => api.map(run, l))));
  const maps = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value as MapView] : []));
  if (!maps.length) throw (settled[0] as PromiseRejectedResult).reason;
  const missing = layers.length - maps.length;
  return { build: () => attentionGraph(s.tokens, maps, s.model.n_heads, position), floor: ATTENTION_FLOOR,
    note: missing ? `${missing} layers have no map in this trace` : "" };
}

/** The routes into ``position`` from a server job (progress shown while it runs), pruned at ROUTES_FLOOR. */
async function routesOf(s: TraceSummary, position: number): Promise<Loaded> {
  const model = await servedModel();
  const progress = jobProgress("routes");
  const data = await cached(`routes:${model}:${s.prompt}:${position}`, async () =>
    finished(api, await api.startRoutes(model, s.prompt, position, ROUTES_FLOOR), progress));
  return { build: () => routesGraph(data), floor: data.threshold,
    note: `routes by ${model}, edge importance as in Ferrando & Voita (2024); pruned at ${fmt(data.threshold)} by the server` };
}

/** The model new work runs on: the URL's, else the first the server serves. */
async function servedModel(): Promise<string> {
  if (api instanceof EmbeddedApi) return api.runId; // a page that carries its run answers its jobs from its data
  const model = state.model ?? (await cached("models", () => api.models()))[0]?.spec;
  if (!model) throw new ApiError(0, "the server serves no model", "start it with lmxray serve --model SPEC");
  return model;
}

/** A progress bar for a ``kind`` job in the main pane; the callback that moves it. */
function jobProgress(kind: string): (j: Job<unknown>) => void {
  const bar = el("progress");
  const label = el("span", ` starting the ${kind} job…`);
  const box = el("div", undefined, "job");
  box.append(bar, label);
  main.replaceChildren(box);
  return (j) => {
    bar.value = j.progress;
    label.textContent = ` ${j.message}`;
  };
}

buildHeader();
void render();
