/** The HTTP client of `lmxray serve`'s API: one table of routes, JSON in and out, errors with the server's fix line. */

import type { RoutesData } from "../graph/routes";
import type { FlowData } from "../views/flow";
import type { HeadsData } from "../views/heads";
import type { Experiment, ProfileSummary, SweepCurves, SweepPair, SweepSummary, TableRows } from "../views/experiments";
import type { LogitsData } from "../views/logits";
import type { CompareView, HeadMapsView, Job, LensView, MapView, ModelEntry, RunRecord, TraceSummary } from "./views";

/** A failed request: the server's ``{"error", "fix"}`` body, or what went wrong on the way. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly problem: string, readonly fix: string | null) {
    super(fix ? `${problem} — ${fix}` : problem);
  }
}

const enc = encodeURIComponent;

/** Prompts up to this many characters are traced with per-head maps (layers × heads × tokens² floats). */
export const PER_HEAD_MAX_CHARS = 600;

/** Every path the pages call, relative to the API root. */
export const ROUTES = {
  models: () => "models",
  runs: () => "runs",
  summary: (run: string) => `runs/${enc(run)}/summary`,
  lens: (run: string, position: number) => `runs/${enc(run)}/lens?position=${position}`,
  map: (run: string, layer: number, head?: number) =>
    `runs/${enc(run)}/maps/${layer}` + (head === undefined ? "" : `?head=${head}`),
  headMaps: (run: string, layer: number) => `runs/${enc(run)}/maps/${layer}/heads`,
  compare: (a: string, b: string, align: string) => `compare?a=${enc(a)}&b=${enc(b)}&align=${enc(align)}`,
  experiments: () => "experiments",
  experimentSummary: (name: string) => `experiments/${enc(name)}/summary`,
  sweepCurves: (name: string) => `experiments/${enc(name)}/curves`,
  sweepPair: (name: string, pair: string) => `experiments/${enc(name)}/pairs/${enc(pair)}`,
  uploads: () => "uploads",
  query: (name: string, table: string) => `experiments/${enc(name)}/tables/${enc(table)}/query`,
  routes: () => "jobs/routes",
  logits: () => "jobs/logits",
  flow: () => "jobs/flow",
  heads: () => "jobs/heads",
  job: (id: string) => `jobs/${enc(id)}`,
};

/** How often a running job is asked for its progress. */
export const JOB_POLL_MS = 250;

export interface Api {
  models(): Promise<ModelEntry[]>;
  runs(): Promise<RunListing[]>;
  trace(model: string, prompt: string): Promise<RunListing>;
  summary(run: string): Promise<TraceSummary>;
  lens(run: string, position: number): Promise<LensView>;
  map(run: string, layer: number, head?: number): Promise<MapView>;
  headMaps(run: string, layer: number): Promise<HeadMapsView>;
  compare(a: string, b: string, align: string): Promise<CompareView>;
  startRoutes(model: string, prompt: string, position: number, threshold: number): Promise<Job<RoutesData>>;
  startLogits(model: string, prompt: string, steps: number): Promise<Job<LogitsData>>;
  startFlow(model: string, prompt: string, position: number, tokens: string[], versus?: string): Promise<Job<FlowData>>;
  startHeads(model: string, baseline: "random" | "none"): Promise<Job<HeadsData>>;
  upload(file: File): Promise<RunListing>;
  experiments(): Promise<Experiment[]>;
  experimentSummary(name: string): Promise<SweepSummary | ProfileSummary>;
  sweepCurves(name: string): Promise<SweepCurves>;
  sweepPair(name: string, pair: string): Promise<SweepPair>;
  query(name: string, table: string, body: TableQuery): Promise<TableRows>;
  job<T>(id: string): Promise<Job<T>>;
}

/** What the pages read of a stored run's record. */
export type RunListing = Pick<RunRecord, "run_id" | "model_name" | "prompt">;

/** A table query: chosen columns, rows matching every filter, a page of them. */
export interface TableQuery {
  columns?: string[];
  filters?: { column: string; op?: "eq" | "ne" | "lt" | "le" | "gt" | "ge" | "in"; value: unknown }[];
  limit?: number;
  offset?: number;
}

/** Follow ``job`` until it ends, reporting progress; its result, or an ApiError with the job's error and fix. */
export async function finished<T>(api: Api, job: Job<T>, progress: (j: Job<T>) => void): Promise<T> {
  for (let j = job; ; j = await api.job<T>(j.id)) {
    progress(j);
    if (j.state === "done" && j.result !== null) return j.result;
    if (j.state === "failed" || j.state === "cancelled")
      throw new ApiError(422, j.error?.error ?? `the ${j.kind} job ${j.state}`, j.error?.fix ?? null);
    await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
  }
}

/** The API of the server that served this page (``root`` is the API prefix, "api/" beside index.html). */
export class HttpApi implements Api {
  constructor(private readonly root: URL, private readonly token: string | null = null) {}

  models = () => this.get<ModelEntry[] | { models: ModelEntry[] }>(ROUTES.models()).then(listOf("models"));
  runs = () => this.get<RunRecord[] | { runs: RunRecord[] }>(ROUTES.runs()).then(listOf("runs"));
  summary = (run: string) => this.get<TraceSummary>(ROUTES.summary(run));
  lens = (run: string, position: number) => this.get<LensView>(ROUTES.lens(run, position));
  map = (run: string, layer: number, head?: number) => this.get<MapView>(ROUTES.map(run, layer, head));
  headMaps = (run: string, layer: number) => this.get<HeadMapsView>(ROUTES.headMaps(run, layer));
  compare = (a: string, b: string, align: string) => this.get<CompareView>(ROUTES.compare(a, b, align));
  experiments = () => this.get<Experiment[] | { experiments: Experiment[] }>(ROUTES.experiments()).then(listOf("experiments"));
  experimentSummary = (name: string) => this.get<SweepSummary | ProfileSummary>(ROUTES.experimentSummary(name));
  sweepCurves = (name: string) => this.get<SweepCurves>(ROUTES.sweepCurves(name));
  sweepPair = (name: string, pair: string) => this.get<SweepPair>(ROUTES.sweepPair(name, pair));
  query = (name: string, table: string, body: TableQuery) =>
    this.request<TableRows>(ROUTES.query(name, table), { method: "POST", body: JSON.stringify(body) });
  job = <T>(id: string) => this.get<Job<T>>(ROUTES.job(id));

  startRoutes(model: string, prompt: string, position: number, threshold: number): Promise<Job<RoutesData>> {
    return this.request<Job<RoutesData>>(ROUTES.routes(),
      { method: "POST", body: JSON.stringify({ model, prompt, position, threshold }) });
  }

  startLogits(model: string, prompt: string, steps: number): Promise<Job<LogitsData>> {
    return this.request<Job<LogitsData>>(ROUTES.logits(), { method: "POST", body: JSON.stringify({ model, prompt, steps }) });
  }

  /** Store a trace file as a run (the same bytes again answer the same run). */
  async upload(file: File): Promise<RunRecord> {
    const form = new FormData();
    form.append("file", file, file.name);
    return (await this.request<{ run: RunRecord; hit: boolean }>(ROUTES.uploads(), { method: "POST", body: form })).run;
  }

  startFlow(model: string, prompt: string, position: number, tokens: string[], versus?: string): Promise<Job<FlowData>> {
    return this.request<Job<FlowData>>(ROUTES.flow(),
      { method: "POST", body: JSON.stringify({ model, prompt, position, tokens, versus: versus ?? null }) });
  }

  startHeads(model: string, baseline: "random" | "none"): Promise<Job<HeadsData>> {
    return this.request<Job<HeadsData>>(ROUTES.heads(), { method: "POST", body: JSON.stringify({ model, baseline }) });
  }

  /** Trace ``prompt`` (a stored run answers without a forward pass) with the lens at every position, so any graph
   * node can show it; short prompts keep per-head maps. */
  async trace(model: string, prompt: string): Promise<RunRecord> {
    const plan = { per_head: prompt.length <= PER_HEAD_MAX_CHARS, lens_all: true };
    const out = await this.request<{ run: RunRecord; hit: boolean }>(ROUTES.runs(),
      { method: "POST", body: JSON.stringify({ model, prompt, plan }) });
    return out.run;
  }

  private get<T>(path: string): Promise<T> {
    return this.request<T>(path, { method: "GET" });
  }

  private async request<T>(path: string, init: RequestInit): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (typeof init.body === "string") headers["Content-Type"] = "application/json"; // FormData sets its own
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let response: Response;
    try {
      response = await fetch(new URL(path, this.root), { ...init, headers });
    } catch (e) {
      throw new ApiError(0, `the server did not answer (${(e as Error).message})`, "check that lmxray serve is running");
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) throw errorOf(response.status, body);
    if (body === null) throw new ApiError(response.status, `the server sent no JSON for ${path}`, null);
    return body as T;
  }
}

/** The ApiError for a failed response: the server's error and fix when the body has them. */
export function errorOf(status: number, body: unknown): ApiError {
  const b = (body ?? {}) as { error?: unknown; fix?: unknown; detail?: unknown };
  const problem = typeof b.error === "string" ? b.error : `request failed with HTTP ${status}`;
  return new ApiError(status, problem, typeof b.fix === "string" ? b.fix : null);
}

function listOf<T>(key: string): (body: T[] | Record<string, T[]>) => T[] {
  return (body) => (Array.isArray(body) ? body : (body[key] ?? []));
}
