"""Turn a sweep's stored rows into its tables, category summary, BOS-share profile, figures and markdown."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from lmxray.analysis.divergence import bos_profile, category_summary, curve_metrics, mean_curves
from lmxray.errors import LmxrayError
from lmxray.experiments.datasets import Pair
from lmxray.experiments.store import SUMMARY_JSON, RunStore, atomic_write, write_tables
from lmxray.render import experiment_figures as figures

LAYER_COLUMNS = ("id", "category", "layer", "js", "bos_share_intended", "bos_share_contradictory",
                 "expected_share_intended")
PAIR_COLUMNS = ("n_tokens_intended", "n_tokens_contradictory", "top1_intended", "prob_intended",
                "top1_contradictory", "prob_contradictory", "expected", "hit_intended", "hit_contradictory")


def finish_sweep(store: RunStore, pairs: list[Pair], threshold: float, model_name: str) -> dict:
    """Write every output of the run folder from its parts (in dataset order) and return the summary."""
    stored = store.read()
    if stored is None:
        raise LmxrayError(f"{store.folder} holds no results yet", "run the sweep first")
    order = {p.id: i for i, p in enumerate(pairs)}
    data = stored.to_pydict()
    keep = [i for i, pid in enumerate(data["id"]) if pid in order]
    keep.sort(key=lambda i: (order[data["id"][i]], data["layer"][i]))
    data = {name: [values[i] for i in keep] for name, values in data.items()}
    layers = pa.table({name: data[name] for name in LAYER_COLUMNS}, schema=pa.schema([stored.schema.field(n) for n in LAYER_COLUMNS]))
    ids = list(dict.fromkeys(data["id"]))
    n_layers = len(data["id"]) // len(ids)
    first_row = {pid: i * n_layers for i, pid in enumerate(ids)}
    js = np.asarray(data["js"]).reshape(len(ids), n_layers)
    metrics = [curve_metrics(curve, threshold) for curve in js]
    categories = [data["category"][first_row[pid]] for pid in ids]
    pair_table = {
        "id": ids, "category": categories,
        "first_layer": [m.first_layer for m in metrics], "peak_layer": [m.peak_layer for m in metrics],
        "peak_js": [m.peak for m in metrics], "area": [m.area for m in metrics], "mean_js": [m.mean for m in metrics],
        **{name: [data[name][first_row[pid]] for pid in ids] for name in PAIR_COLUMNS},
    }
    first = [math.nan if m.first_layer is None else m.first_layer for m in metrics]
    by_category = category_summary(categories, first, pair_table["peak_layer"], pair_table["area"],
                                   pair_table["mean_js"])
    shares = [np.asarray(data[f"bos_share_{side}"]).reshape(len(ids), n_layers) for side in ("intended", "contradictory")]
    profile_rows, bottleneck = bos_profile(categories, *shares)
    for row in by_category:
        row["bottleneck_layer"] = bottleneck[row["category"]]
        row["bottleneck_share"] = next(r["bos_share"] for r in profile_rows
                                       if r["category"] == row["category"] and r["layer"] == bottleneck[row["category"]])
        hits = [h for c, h in zip(categories, pair_table["hit_intended"]) if h is not None and row["category"] in (c, "all")]
        row["n_expected"], row["n_hit_intended"] = len(hits), sum(hits)
    write_tables(layers, store.folder, "layers")
    write_tables(pa.table(pair_table), store.folder, "pairs")
    write_tables(pa.Table.from_pylist(by_category), store.folder, "summary")
    write_tables(pa.Table.from_pylist(profile_rows), store.folder, "bos_profile")
    summary = {"command": "sweep", "model": model_name, "pairs": len(ids), "layers": n_layers, "threshold": threshold,
               "align": store.settings["align"], "categories": by_category}
    summary = _finite(summary)
    atomic_write(store.folder / SUMMARY_JSON, lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2) + "\n"))
    atomic_write(store.folder / "summary.md", lambda tmp: Path(tmp).write_text(markdown(summary)))
    figures.divergence_curves(mean_curves(categories, js), threshold, store.folder / "divergence_by_category.png",
                              f"JS divergence by layer — {model_name}")
    per_category = {name: np.array([r["bos_share"] for r in profile_rows if r["category"] == name])
                    for name in bottleneck if name != "all"}
    figures.bos_share_profile(per_category, bottleneck, store.folder / "bos_profile.png",
                              f"first-position (BOS) share of the prediction row — {model_name}")
    return summary


def markdown(summary: dict) -> str:
    """A short markdown report: the category table and how to read it."""
    lines = [f"# Sweep summary — {summary['model']}", "",
             f"{summary['pairs']} pairs, {summary['layers']} layers; JS divergence (bits) between the prediction "
             f"position's attention in the intended and the contradictory prompt, aligned at the "
             f"{summary['align']}; first divergence = first layer with JS > {summary['threshold']:g}.", "",
             "| category | pairs | peak layer [95% CI] | first divergence [95% CI] (never) | area [95% CI] "
             "| mean JS | BOS bottleneck (share) | expected produced |",
             "|---|---|---|---|---|---|---|---|"]
    for r in summary["categories"]:
        hit = f"{r['n_hit_intended']}/{r['n_expected']}" if r["n_expected"] else "-"
        lines.append(f"| {r['category']} | {r['n_pairs']} | {format_ci(r, 'peak_layer', 1)} | "
                     f"{format_ci(r, 'first_layer', 1)} ({r['n_never']}) | {format_ci(r, 'area', 3)} | {format_num(r['mean_js'], 4)} | "
                     f"L{r['bottleneck_layer']} ({format_num(r['bottleneck_share'], 3)}) | {hit} |")
    lines += ["", "Figures: `divergence_by_category.png`, `bos_profile.png`. Tables: `pairs.*`, `layers.*`, "
              "`summary.*`, `bos_profile.*` (Parquet and CSV).", ""]
    return "\n".join(lines)


def format_ci(row: dict, name: str, digits: int) -> str:
    """``mean [low, high]`` of a summary metric, or ``-`` when it has no values."""
    if row.get(name) is None:
        return "-"
    return f"{format_num(row[name], digits)} [{format_num(row[name + '_lo'], digits)}, {format_num(row[name + '_hi'], digits)}]"


def format_num(x, digits: int) -> str:
    """A number with ``digits`` decimals; ``-`` for None or NaN."""
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _finite(obj):
    """NaN becomes null so the JSON stays standard."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
