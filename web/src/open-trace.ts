/** Opening a trace file in the page: picked in the prompt bar or dropped anywhere on the page, uploaded and shown as
 * a run (what is refused is said in the error panel, with the fix, before anything is sent). */

import type { App } from "./app";
import { el } from "./dom";
import { carriesFiles, traceFileOf } from "./upload";

/** Upload a dropped or picked trace file and show it as a run (errors in the error panel, with the fix). */
export async function openTraceFile(app: App, files: ArrayLike<File>): Promise<void> {
  app.panes.errors.replaceChildren();
  try {
    const chosen = traceFileOf(files);
    app.panes.main.replaceChildren(el("p", `Opening ${chosen.name}…`, "muted"));
    const record = await app.api.upload(chosen);
    app.forget("runs");
    app.navigate({ run: record.run_id, prompt: undefined, position: undefined, vs: undefined,
      view: app.state.view === "experiments" ? "graph" : app.state.view });
  } catch (e) {
    app.showError(e);
  }
}

/** Take files dropped on the page as traces to open (the page shows it is a drop target while files are over it). */
export function acceptDroppedTraces(app: App): void {
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
    void openTraceFile(app, ev.dataTransfer.files);
  });
}
