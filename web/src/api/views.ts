/** The view JSON shapes the pages read: the ``to_dict()`` of lmxray.views objects (see docs/views.md). */

export interface TokenScore {
  token_id: number;
  text: string;
  prob: number;
}

export interface ConvergenceRow {
  position: number;
  token: string;
  mass: number;
  share: number;
  status: string;
}

/** ``TraceView.to_dict()``: the trace's identity, prediction and convergence at the prediction position. */
export interface TraceSummary {
  model: { name: string; n_layers: number; n_heads: number; architecture: string; source: string };
  prompt: string;
  tokens: string[];
  token_ids: number[];
  position: number;
  predicted_token: number;
  predicted_text: string;
  confidence: number;
  top_k: TokenScore[];
  convergence: ConvergenceRow[] | null;
  summary: Record<string, number | string | null> | null;
  note: string | null;
}

export interface LensToken {
  token_id: number;
  text: string | null;
  prob: number;
}

export interface LensRow {
  layer: number;
  top: LensToken[];
  target_prob: number;
  target_rank: number | null;
}

/** ``LensView.to_dict()``. */
export interface LensView {
  model: string;
  prompt: string;
  position: number;
  token: string;
  target_id: number;
  target_text: string | null;
  rows: LensRow[];
  first_top1: number | null;
  settled: number | null;
  rank_exact: boolean;
}

/** ``MapView.to_dict()``: one layer's map, head-summed (``head`` null) or one head's. */
export interface MapView {
  model: string;
  tokens: string[];
  layer: number;
  head: number | null;
  values: number[][];
  vmax: number;
  threshold: number | null;
}

/** ``HeadMapsView.to_dict()``: one layer's per-head maps on one scale. */
export interface HeadMapsView {
  model: string;
  tokens: string[];
  layer: number;
  heads: number[];
  values: number[][][];
  vmax: number;
  threshold: number | null;
}

/** A stored run (``RunRecord.to_dict()``). */
export interface RunRecord {
  run_id: string;
  model_name: string;
  prompt: string;
  n_tokens: number;
}

/** A served model as ``GET /api/models`` lists it. */
export interface ModelEntry {
  spec: string;
  state: string;
  info: { name: string } | null;
}

/** A server job (``GET /api/jobs/{id}``): long work with progress, its view JSON as ``result`` once done. */
export interface Job<T> {
  id: string;
  kind: string;
  state: "queued" | "running" | "done" | "failed" | "cancelled";
  progress: number; // 0..1
  message: string;
  error: { error: string; fix: string | null } | null;
  result: T | null;
}
