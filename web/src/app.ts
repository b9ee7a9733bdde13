/** The explorer's shared parts: the API, the URL state kept in the address bar, a cache of what was loaded, the
 * page's panes, and what every view uses (the error panel, the model new work runs on, a job's progress bar). */

import { ApiError, type Api } from "./api/client";
import { EmbeddedApi } from "./api/embedded";
import type { Job } from "./api/views";
import { el } from "./dom";
import { formatState, parseState, withState, type UrlState } from "./state";

/** The page's panes: the prompt bar's header, the view tabs, errors, the view itself and its side panel. */
export interface Panes {
  header: HTMLElement;
  tabs: HTMLElement;
  errors: HTMLElement;
  main: HTMLElement;
  side: HTMLElement;
}

/** Lay the panes out in ``root``. */
export function layoutPanes(root: HTMLElement): Panes {
  const header = root.appendChild(el("header"));
  const tabs = root.appendChild(el("nav", undefined, "tabs"));
  const errors = root.appendChild(el("div", undefined, "errors"));
  const body = root.appendChild(el("div", undefined, "body"));
  const main = body.appendChild(el("main"));
  const side = body.appendChild(el("aside"));
  return { header, tabs, errors, main, side };
}

/** The state the address bar holds; an embedded page opens on its own run, in its own start view. */
export function stateFromUrl(api: Api): UrlState {
  const s = parseState(location.search);
  if (!(api instanceof EmbeddedApi)) return s;
  const view = new URLSearchParams(location.search).has("view") ? s.view : api.startView ?? s.view;
  return withState(s, { view, run: s.run ?? (s.prompt ? undefined : api.runId) });
}

/** The running explorer: its state changes here, and each change that asks for it draws the page again. */
export class App {
  private current: UrlState;
  private readonly cache = new Map<string, Promise<unknown>>();

  constructor(readonly api: Api, readonly panes: Panes, state: UrlState, private readonly redraw: (app: App) => void) {
    this.current = state;
  }

  get state(): UrlState {
    return this.current;
  }

  /** Change the state and draw the page for it (a new history entry unless ``replace``). */
  navigate(patch: Partial<UrlState>, replace = false): void {
    this.current = withState(this.current, patch);
    this.remember(replace);
    this.redraw(this);
  }

  /** Change the state without drawing again (a slider moved, a traced run got its id): the history entry is replaced. */
  amend(patch: Partial<UrlState>): void {
    this.current = withState(this.current, patch);
    this.remember(true);
  }

  /** Draw ``state`` (back or forward to an entry the address bar already holds). */
  restore(state: UrlState): void {
    this.current = state;
    this.redraw(this);
  }

  /** Put the state in the address bar; a page without one (a notebook's srcdoc frame) keeps it in memory only. */
  private remember(replace: boolean): void {
    try {
      history[replace ? "replaceState" : "pushState"](null, "", formatState(this.current) || location.pathname);
    } catch {
      // about:srcdoc refuses history URLs: the view still changes, it just has no permalink there
    }
  }

  /** ``load()`` once per ``key`` (a failure is not kept: the next ask loads again). */
  cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    if (!this.cache.has(key)) this.cache.set(key, load().catch((e) => { this.cache.delete(key); throw e; }));
    return this.cache.get(key) as Promise<T>;
  }

  /** Drop ``key`` from the cache (the list of runs after a trace or an upload). */
  forget(key: string): void {
    this.cache.delete(key);
  }

  /** An error in the error panel: its problem, and its fix when it has one. */
  showError(e: unknown): void {
    const box = this.panes.errors.appendChild(el("div", undefined, "error"));
    box.setAttribute("role", "alert");
    box.append(el("strong", e instanceof ApiError ? e.problem : String((e as Error)?.message ?? e)));
    if (e instanceof ApiError && e.fix) box.append(el("div", e.fix, "fix"));
  }

  /** The model new work runs on: the URL's, else the first the server serves. */
  async servedModel(): Promise<string> {
    const api = this.api;
    if (api instanceof EmbeddedApi) return api.runId; // a page that carries its run answers its jobs from its data
    const model = this.current.model ?? (await this.cached("models", () => api.models()))[0]?.spec;
    if (!model) throw new ApiError(0, "the server serves no model", "start it with lmxray serve --model SPEC");
    return model;
  }

  /** A progress bar for a ``kind`` job in the main pane; the callback that moves it. */
  jobProgress(kind: string): (j: Job<unknown>) => void {
    const bar = el("progress");
    const label = el("span", ` starting the ${kind} job…`);
    const box = el("div", undefined, "job");
    box.append(bar, label);
    this.panes.main.replaceChildren(box);
    return (j) => {
      bar.value = j.progress;
      label.textContent = ` ${j.message}`;
    };
  }
}
