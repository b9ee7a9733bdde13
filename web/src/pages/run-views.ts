/** The views of one run, each drawn from the run's summary and what it loads (maps, lens, a model job's result);
 * a view returns null when the page moved on while it loaded. */

import { ApiError, finished } from "../api/client";
import type { TraceSummary } from "../api/views";
import type { App } from "../app";
import { canvasOf, el, tableView } from "../dom";
import { exportButtons, type Draw } from "../export";
import { tokenLabel } from "../graph/render";
import { fmt } from "../scale";
import { DEFAULT_STEPS, type UrlState } from "../state";
import { chartLayout, drawChart, layerTable, metricsTable } from "../views/compare";
import { attributionTable, chosen, drawStack, stackLayout } from "../views/flow";
import { cellOrigin, describe, drawHeads, headsLayout, hitHead, topTable } from "../views/heads";
import { drawTrace, logitsTable, traceLayout } from "../views/logits";
import { cellCentre, drawMaps, hitCell, mapsLayout, type MapsInput } from "../views/maps";
import { convergenceTable, lensTable } from "../views/tables";
import { graphView } from "./run-graph";

type Renderer = (app: App, run: string, s: TraceSummary, stale: () => boolean) => Promise<HTMLElement | null>;

export type RunView = Exclude<UrlState["view"], "experiments">; // the views of one run (experiments is drawn before a run)

export const RUN_VIEWS: Record<RunView, Renderer> = {
  graph: graphView,

  async maps(app, run, s, stale) {
    const layer = Math.min(app.state.layer ?? s.model.n_layers - 1, s.model.n_layers - 1);
    let input: MapsInput;
    let note = "";
    if (app.state.head !== undefined) {
      const m = await app.cached(`map:${run}:${layer}:${app.state.head}`, () => app.api.map(run, layer, app.state.head));
      input = { tokens: m.tokens, layer: m.layer, heads: [m.head], values: [m.values], vmax: m.vmax };
    } else {
      try {
        const hm = await app.cached(`heads:${run}:${layer}`, () => app.api.headMaps(run, layer));
        input = { tokens: hm.tokens, layer: hm.layer, heads: hm.heads, values: hm.values, vmax: hm.vmax };
      } catch (e) {
        if (!(e instanceof ApiError) || e.status >= 500 || e.status === 0) throw e;
        const m = await app.cached(`map:${run}:${layer}`, () => app.api.map(run, layer));
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
    pick.onchange = () => app.navigate({ layer: Number(pick.value) });
    const width = Math.max(320, app.panes.main.clientWidth || 900);
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

  async lens(app, run, s) {
    const position = Math.min(app.state.position ?? s.position, s.tokens.length - 1);
    const lens = await app.cached(`lens:${run}:${position}`, () => app.api.lens(run, position));
    const wrap = el("div");
    const pick = wrap.appendChild(el("select"));
    pick.name = "position";
    s.tokens.forEach((t, i) => pick.append(new Option(`${i}: ${tokenLabel(t)}`, String(i), false, i === position)));
    pick.onchange = () => app.navigate({ position: Number(pick.value) });
    return tableView(wrap, lensTable(lens), `lmxray-lens-${run}-${position}`);
  },

  async convergence(_app, run, s) {
    return tableView(el("div"), convergenceTable(s), `lmxray-convergence-${run}`);
  },

  async logits(app, run, s, stale) {
    const model = await app.servedModel();
    const steps = app.state.steps ?? DEFAULT_STEPS;
    const position = Math.min(app.state.position ?? s.position, s.tokens.length - 1);
    const lens = app.cached(`lens:${run}:${position}`, () => app.api.lens(run, position));
    const progress = app.jobProgress("logits");
    const v = await app.cached(`logits:${model}:${s.prompt}:${steps}`, async () =>
      finished(app.api, await app.api.startLogits(model, s.prompt, steps), progress));
    if (stale()) return null;
    const wrap = el("div", undefined, "logits");
    const controls = wrap.appendChild(el("div", undefined, "controls"));
    const pick = controls.appendChild(el("select"));
    pick.name = "steps";
    for (const n of new Set([1, 4, 8, 16, 32, 64, steps].sort((a, b) => a - b)))
      pick.append(new Option(`${n} steps`, String(n), false, n === steps));
    pick.onchange = () => app.navigate({ steps: Number(pick.value) });
    const lay = traceLayout(v, Math.min(900, Math.max(360, app.panes.main.clientWidth || 900)));
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

  async flow(app, run, s, stale) {
    const model = await app.servedModel();
    const position = Math.min(app.state.position ?? s.position, s.tokens.length - 1);
    const tokens = app.state.token ? [app.state.token] : [];
    const progress = app.jobProgress("flow");
    const v = await app.cached(`flow:${model}:${s.prompt}:${position}:${app.state.token ?? ""}:${app.state.versus ?? ""}`, async () =>
      finished(app.api, await app.api.startFlow(model, s.prompt, position, tokens, app.state.versus), progress));
    if (stale()) return null;
    const wrap = el("div", undefined, "flow");
    const controls = wrap.appendChild(el("form", undefined, "controls"));
    const pos = controls.appendChild(el("select"));
    pos.name = "position";
    s.tokens.forEach((t, i) => pos.append(new Option(`${i}: ${tokenLabel(t)}`, String(i), false, i === position)));
    const tok = controls.appendChild(el("input"));
    Object.assign(tok, { name: "token", placeholder: `token (${s.predicted_text})`, value: app.state.token ?? "", size: 10 });
    const vs = controls.appendChild(el("input"));
    Object.assign(vs, { name: "versus", placeholder: "versus token", value: app.state.versus ?? "", size: 10 });
    controls.appendChild(el("button", "Attribute")).type = "submit";
    controls.onsubmit = (ev) => {
      ev.preventDefault();
      app.navigate({ position: Number(pos.value), token: tok.value || undefined, versus: vs.value || undefined });
    };
    const lay = stackLayout(v, Math.min(900, Math.max(360, app.panes.main.clientWidth || 900)));
    const draw: Draw = (p) => drawStack(p, v, lay);
    const bar = wrap.appendChild(el("div", undefined, "controls"));
    bar.append(exportButtons(`lmxray-flow-${run}-${position}`, () => ({ draw, width: lay.width, height: lay.height })));
    wrap.appendChild(canvasOf(draw, lay.width, lay.height)).setAttribute("aria-label", "flow by source");
    window.lmxray.flow = { segments: lay.segments, span: lay.bottom - lay.top };
    const a = chosen(v, app.state.token);
    tableView(wrap.appendChild(el("div", undefined, "attribution")), attributionTable(v, a),
      `lmxray-attribution-${run}-${position}`);
    return wrap;
  },

  async heads(app, _run, s, stale) {
    const model = await app.servedModel();
    const baseline = app.state.baseline ?? "random";
    const progress = app.jobProgress("heads");
    const v = await app.cached(`heads-job:${model}:${baseline}`, async () =>
      finished(app.api, await app.api.startHeads(model, baseline), progress));
    if (stale()) return null;
    const wrap = el("div", undefined, "heads");
    const controls = wrap.appendChild(el("div", undefined, "controls"));
    const pick = controls.appendChild(el("select"));
    pick.name = "baseline";
    pick.append(new Option("z-scores against random-init twins", "random", false, baseline === "random"),
      new Option("no baseline (scores only)", "none", false, baseline === "none"));
    pick.onchange = () => app.navigate({ baseline: pick.value === "none" ? "none" : undefined });
    const lay = headsLayout(v, Math.max(320, app.panes.main.clientWidth || 900));
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
      if (hit && hit.head < s.model.n_heads) app.navigate({ view: "maps", layer: v.layers[hit.row], head: hit.head });
    };
    window.lmxray.heads = { cell: (pattern, row, head) => {
      const { x, y } = cellOrigin(lay, { pattern, row, head });
      return { x: x + lay.cell / 2, y: y + lay.cell / 2 };
    } };
    wrap.append(grid);
    tableView(wrap.appendChild(el("div", undefined, "top")), topTable(v), `lmxray-heads-top-${baseline}`);
    return wrap;
  },

  async compare(app, run, _s, stale) {
    const runs = await app.cached("runs", () => app.api.runs());
    const wrap = el("div", undefined, "compare");
    const controls = wrap.appendChild(el("div", undefined, "controls"));
    const pick = controls.appendChild(el("select"));
    pick.name = "vs";
    pick.append(new Option("compare with…", ""));
    for (const r of runs.filter((r) => r.run_id !== run).slice(0, 30))
      pick.append(new Option(`${r.model_name}: ${r.prompt.slice(0, 60)}`, r.run_id, false, r.run_id === app.state.vs));
    pick.onchange = () => pick.value && app.navigate({ vs: pick.value });
    const align = controls.appendChild(el("select"));
    align.name = "align";
    for (const a of ["start", "end"]) align.append(new Option(`aligned at the ${a}`, a, false, a === (app.state.align ?? "start")));
    align.onchange = () => app.navigate({ align: align.value === "end" ? "end" : undefined });
    if (!app.state.vs) {
      wrap.append(el("p", "Pick a second run to compare with this one.", "muted"));
      return wrap;
    }
    const vs = app.state.vs;
    const v = await app.cached(`compare:${run}:${vs}:${app.state.align ?? "start"}`, () => app.api.compare(run, vs, app.state.align ?? "start"));
    if (stale()) return null;
    const lay = chartLayout(v.layers, Math.min(900, Math.max(360, app.panes.main.clientWidth || 900)));
    const draw: Draw = (p) => drawChart(p, v.layers, lay);
    controls.append(exportButtons(`lmxray-compare-${run}-${vs}`, () => ({ draw, width: lay.width, height: lay.height })));
    const chart = wrap.appendChild(canvasOf(draw, lay.width, lay.height));
    chart.setAttribute("aria-label", "per-layer divergence");
    tableView(wrap.appendChild(el("div", undefined, "layers")), layerTable(v), `lmxray-compare-layers-${run}-${vs}`);
    tableView(wrap.appendChild(el("div", undefined, "metrics")), metricsTable(v), `lmxray-compare-metrics-${run}-${vs}`);
    return wrap;
  },
};
