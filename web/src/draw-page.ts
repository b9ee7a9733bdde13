/** Drawing the page for the URL state: the tabs, then the experiments page, or a run (traced first when the URL
 * names a prompt but no run) under its heading in the chosen view; a newer draw makes an older one stop. */

import type { TraceSummary } from "./api/views";
import type { App } from "./app";
import { el } from "./dom";
import { experimentsView } from "./pages/experiments";
import { RUN_VIEWS, type RunView } from "./pages/run-views";
import { fmt } from "./scale";
import { VIEWS, formatState, withState } from "./state";

let drawId = 0; // the latest draw's number: an older one that is still loading leaves the page alone

/** Draw the page for ``app.state``; window.lmxray.ready says when it is drawn. */
export async function drawPage(app: App): Promise<void> {
  const id = ++drawId;
  const stale = () => id !== drawId;
  const { header, errors, main, side } = app.panes;
  window.lmxray.ready = false;
  buildTabs(app);
  errors.replaceChildren();
  side.replaceChildren();
  try {
    if (app.state.view === "experiments") {
      main.replaceChildren(el("p", "Loading…", "muted"));
      const content = await experimentsView({ api: app.api, state: app.state, navigate: (patch) => app.navigate(patch),
        width: main.clientWidth || 900, traced: () => app.forget("runs") });
      if (stale()) return;
      main.replaceChildren(content);
      window.lmxray.ready = true;
      return;
    }
    if (!app.state.run && app.state.prompt) {
      main.replaceChildren(el("p", "Tracing…", "muted"));
      const model = await app.servedModel();
      const record = await app.api.trace(model, app.state.prompt);
      app.forget("runs");
      if (stale()) return;
      app.amend({ run: record.run_id });
    }
    if (!app.state.run) {
      main.replaceChildren(el("p", "Type a prompt and press Run, or open a recent run.", "muted"));
      window.lmxray.ready = true;
      return;
    }
    const run = app.state.run;
    main.replaceChildren(el("p", "Loading…", "muted"));
    const summary = await app.cached(`summary:${run}`, () => app.api.summary(run));
    if (stale()) return;
    const input = header.querySelector<HTMLInputElement>("input[name=prompt]");
    if (input && !input.value) input.value = summary.prompt;
    const content = await RUN_VIEWS[app.state.view as RunView](app, run, summary, stale);
    if (stale() || !content) return;
    main.replaceChildren(runHeading(summary), content);
  } catch (e) {
    if (stale()) return;
    main.replaceChildren();
    app.showError(e);
  }
  window.lmxray.ready = true;
}

function buildTabs(app: App): void {
  app.panes.tabs.replaceChildren(...VIEWS.map((v) => {
    const a = el("a", v, v === app.state.view ? "active" : undefined);
    a.href = formatState(withState(app.state, { view: v }));
    a.onclick = (ev) => { ev.preventDefault(); app.navigate({ view: v }); };
    return a;
  }));
}

function runHeading(s: TraceSummary): HTMLElement {
  const h = el("div", undefined, "run-heading");
  h.append(el("span", s.model.name, "model-name"), el("span", ` “${s.prompt}” → `),
    el("strong", `“${s.predicted_text}”`), el("span", ` p=${fmt(s.confidence)}`));
  return h;
}
