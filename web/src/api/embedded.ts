/** The API of a page that carries its run with it (the report's inlined bundle, the Jupyter widget): one run's
 * view JSON, written by lmxray.render.report.explorer_data, answered in place; anything that needs a model says so. */

import type { Api, RunListing } from "./client";
import { ApiError } from "./client";
import type { FlowData } from "../views/flow";
import type { ViewName } from "../state";
import type { HeadMapsView, Job, LensView, MapView, TraceSummary } from "./views";

/** The data a report embeds (``explorer_data``): views keyed as the server's routes would answer them. */
export interface EmbeddedRun {
  format: "lmxray.explorer/1";
  run: RunListing;
  summary: TraceSummary;
  lens: Record<string, LensView>; // position -> LensView (positions the trace has a lens for)
  maps: Record<string, MapView>; // layer -> head-summed MapView
  head_maps: Record<string, HeadMapsView>; // layer -> HeadMapsView (empty when the trace has no per-head maps)
  notes: string[]; // what was left out, and why
  view?: ViewName; // the view the page opens on when its URL names none
  flow?: FlowData; // a Flow's view (the Jupyter widget of a Flow), answered for its own position
}

export const SERVE_FIX = "open the trace with `lmxray serve` (drop the file on its page) for views that run the model";

/** ``data`` parsed and checked to be an embedded run. */
export function embeddedRun(text: string): EmbeddedRun {
  const data = JSON.parse(text) as EmbeddedRun;
  if (data?.format !== "lmxray.explorer/1")
    throw new ApiError(0, `this page's data is not an lmxray explorer run (format ${JSON.stringify(data?.format)})`,
      "write the page again with this lmxray version");
  return data;
}

export class EmbeddedApi implements Api {
  constructor(private readonly data: EmbeddedRun) {}

  get runId(): string {
    return this.data.run.run_id;
  }

  get startView(): ViewName | undefined {
    return this.data.view;
  }

  private run(id: string): void {
    if (id !== this.data.run.run_id)
      throw new ApiError(404, `this page holds run ${this.data.run.run_id}, not ${id}`, "remove run= from the URL");
  }

  private missing(what: string): never {
    throw new ApiError(0, `${what} needs lmxray serve: this page holds one run's views`, SERVE_FIX);
  }

  async models() { return []; }
  async runs() { return [this.data.run]; }
  async summary(run: string) { this.run(run); return this.data.summary; }

  async lens(run: string, position: number) {
    this.run(run);
    const v = this.data.lens[String(position)];
    if (!v) throw new ApiError(422, `no logit lens at position ${position} in this page`,
      "trace with the lens at every position (lmxray trace --lens-all) and write the report again");
    return v;
  }

  async map(run: string, layer: number, head?: number): Promise<MapView> {
    this.run(run);
    const v = head === undefined ? this.data.maps[String(layer)] : undefined;
    if (!v && head !== undefined)
      throw new ApiError(422, `single-head maps are not in this page (layer ${layer}, head ${head})`,
        "open the maps view without head=");
    if (!v) throw new ApiError(422, `no map of layer ${layer} in this page`, this.data.notes.join("; ") || SERVE_FIX);
    return v;
  }

  async headMaps(run: string, layer: number) {
    this.run(run);
    const v = this.data.head_maps[String(layer)];
    if (!v) throw new ApiError(422, `no per-head maps of layer ${layer} in this page`, this.data.notes.join("; ") || SERVE_FIX);
    return v;
  }

  async trace(): Promise<never> { return this.missing("tracing a prompt"); }
  async compare(): Promise<never> { return this.missing("comparing two runs"); }
  async startRoutes(): Promise<never> { return this.missing("the routes graph"); }
  async startLogits(): Promise<never> { return this.missing("the generation logit trace"); }
  async startFlow(_model: string, _prompt: string, position: number, tokens: string[], versus?: string): Promise<Job<FlowData>> {
    const flow = this.data.flow;
    if (!flow || position !== flow.position || tokens.length || versus)
      return this.missing(flow ? `exact flow other than at position ${flow.position} with its own tokens` : "exact flow");
    return { id: "embedded-flow", kind: "flow", params: {}, state: "done", progress: 1, message: "carried by this page",
      error: null, created: 0, started: null, finished: null, result: flow };
  }
  async startHeads(): Promise<never> { return this.missing("head scores"); }
  async upload(): Promise<never> { return this.missing("opening a trace file"); }
  async experiments(): Promise<never> { return this.missing("experiments"); }
  async experimentSummary(): Promise<never> { return this.missing("experiments"); }
  async sweepCurves(): Promise<never> { return this.missing("experiments"); }
  async sweepPair(): Promise<never> { return this.missing("experiments"); }
  async query(): Promise<never> { return this.missing("experiments"); }
  async job(): Promise<never> { return this.missing("a job"); }
}
