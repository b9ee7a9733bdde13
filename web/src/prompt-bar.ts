/** The header: the prompt bar (model, prompt, Run), the recent runs and the trace file picker. */

import type { App } from "./app";
import { el } from "./dom";
import { openTraceFile } from "./open-trace";

/** Fill the header; its lists of models and runs fill in as the server answers. */
export function buildHeader(app: App): void {
  const header = app.panes.header;
  header.replaceChildren(el("span", "lmxray", "brand"));
  const form = header.appendChild(el("form", undefined, "prompt-bar"));
  const model = form.appendChild(el("select"));
  model.name = "model";
  model.title = "model";
  const prompt = form.appendChild(el("input"));
  Object.assign(prompt, { name: "prompt", type: "text", placeholder: "Type a prompt", value: app.state.prompt ?? "" });
  form.appendChild(el("button", "Run")).type = "submit";
  form.onsubmit = (ev) => {
    ev.preventDefault();
    if (!prompt.value.trim()) return;
    app.navigate({ prompt: prompt.value, model: model.value || undefined, run: undefined, position: undefined,
      layer: undefined, head: undefined });
  };
  app.cached("models", () => app.api.models()).then((models) => {
    for (const m of models) model.append(new Option(m.info ? `${m.spec} (${m.info.name})` : m.spec, m.spec));
    if (app.state.model) model.value = app.state.model;
  }).catch((e) => app.showError(e));
  const recent = header.appendChild(el("select", undefined, "recent"));
  recent.title = "recent runs";
  recent.append(new Option("recent runs", ""));
  app.cached("runs", () => app.api.runs()).then((runs) => {
    for (const r of runs.slice(0, 30)) recent.append(new Option(`${r.model_name}: ${r.prompt.slice(0, 60)}`, r.run_id));
  }).catch((e) => app.showError(e));
  recent.onchange = () => recent.value && app.navigate({ run: recent.value, prompt: undefined, position: undefined });
  const open = header.appendChild(el("label", "open trace…", "open-file"));
  open.title = "Open a trace file (lmxray .jsonl or .safetensors, rocmforge .jsonl), or drop it on the page";
  const file = open.appendChild(el("input"));
  Object.assign(file, { type: "file", name: "trace-file", accept: ".jsonl,.json,.safetensors", hidden: true });
  file.onchange = () => file.files && void openTraceFile(app, file.files);
}
