/** URL state: what the page shows, kept in the query string so any view reopens from its permalink. */

export const VIEWS = ["graph", "maps", "lens", "convergence", "compare", "logits", "flow", "heads", "experiments"] as const;
export type ViewName = (typeof VIEWS)[number];
export const SOURCES = ["attention", "routes"] as const; // what the graph's edges are
export type Source = (typeof SOURCES)[number];
export const ALIGNS = ["start", "end"] as const; // how compare lines up two prompts of different lengths
export type Align = (typeof ALIGNS)[number];
export const BASELINES = ["random", "none"] as const; // heads: z-scores against random-init twins, or scores only
export type Baseline = (typeof BASELINES)[number];

export interface UrlState {
  view: ViewName;
  model?: string;
  prompt?: string;
  run?: string;
  position?: number; // prediction position (non-negative)
  layer?: number; // model layer
  head?: number; // attention head; absent = summed over heads
  threshold?: number; // graph pruning threshold in (0, 1]
  source?: Source; // graph edges: attention weights (default) or information-flow routes
  vs?: string; // compare: the other run's id (``run`` is side A)
  align?: Align; // compare: align the two prompts at their start (default) or end
  steps?: number; // logits: generation steps (1..1024)
  token?: string; // flow: the token whose logit is attributed (default: the prediction)
  versus?: string; // flow: token B of the contrast logit(token) − logit(B)
  baseline?: Baseline; // heads: what the z-scores compare with (default: random-init twins)
  experiment?: string; // experiments: a run folder's name under --runs
  pair?: string; // experiments: a sweep pair's id, whose per-layer rows are shown
  table?: string; // experiments: a table of the run folder to browse
}

export const DEFAULT_THRESHOLD = 0.04;
export const DEFAULT_STEPS = 8; // the logits view's generation steps (the server's default)
export const MAX_STEPS = 1024; // the server's limit

const KEYS = ["view", "model", "prompt", "run", "position", "layer", "head", "threshold", "source", "vs", "align", "steps", "token",
  "versus", "baseline", "experiment", "pair", "table"] as const;

function nonNegativeInt(text: string | null): number | undefined {
  if (text === null || !/^\d{1,9}$/.test(text)) return undefined;
  return Number(text);
}

function threshold(text: string | null): number | undefined {
  if (text === null || text.trim() === "") return undefined;
  const value = Number(text);
  return Number.isFinite(value) && value > 0 && value <= 1 ? value : undefined;
}

function steps(text: string | null): number | undefined {
  const n = nonNegativeInt(text);
  return n !== undefined && n >= 1 && n <= MAX_STEPS ? n : undefined;
}

function text(value: string | null): string | undefined {
  return value === null || value === "" ? undefined : value;
}

function oneOf<T extends string>(allowed: readonly T[], value: string | null): T | undefined {
  return (allowed as readonly string[]).includes(value ?? "") ? (value as T) : undefined;
}

/** The state a query string names; values that are malformed or out of range are dropped, not guessed. */
export function parseState(search: string): UrlState {
  const q = new URLSearchParams(search);
  return {
    view: oneOf(VIEWS, q.get("view")) ?? "graph",
    model: text(q.get("model")),
    prompt: text(q.get("prompt")),
    run: text(q.get("run")),
    position: nonNegativeInt(q.get("position")),
    layer: nonNegativeInt(q.get("layer")),
    head: nonNegativeInt(q.get("head")),
    threshold: threshold(q.get("threshold")),
    source: oneOf(SOURCES, q.get("source")),
    vs: text(q.get("vs")),
    align: oneOf(ALIGNS, q.get("align")),
    steps: steps(q.get("steps")),
    token: text(q.get("token")),
    versus: text(q.get("versus")),
    baseline: oneOf(BASELINES, q.get("baseline")),
    experiment: text(q.get("experiment")),
    pair: text(q.get("pair")),
    table: text(q.get("table")),
  };
}

/** The query string (with its "?") for a state: fixed key order, unset keys left out, so equal states give equal URLs. */
export function formatState(state: UrlState): string {
  const q = new URLSearchParams();
  for (const key of KEYS) {
    const value = state[key];
    if (value !== undefined && value !== "") q.set(key, String(value));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** ``state`` with ``patch`` applied; a key set to undefined in the patch is removed. */
export function withState(state: UrlState, patch: Partial<UrlState>): UrlState {
  return { ...state, ...patch };
}
