"""Turn a sweep's stored rows into its tables, category summary, BOS-share profile, figures and markdown."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from lmxray.analysis.bootstrap import BAND_LEVEL, BAND_RESAMPLES, BAND_SEED, curve_bands
from lmxray.analysis.divergence import bos_profile, category_summary, curve_metrics, length_split
from lmxray.errors import LmxrayError
from lmxray.experiments.datasets import Pair
from lmxray.experiments.store import SUMMARY_JSON, RunStore, atomic_write, write_tables
from lmxray.experiments.sweep_summary import SUMMARY_SCHEMA
from lmxray.render import experiment_figures as figures

LAYER_COLUMNS = ("id", "category", "layer", "js", "bos_share_intended", "bos_share_contradictory",
                 "expected_share_intended")
PAIR_COLUMNS = ("n_tokens_intended", "n_tokens_contradictory", "length_matched", "n_shared_tokens",
                "differs_intended", "differs_contradictory", "top1_intended", "prob_intended",
                "top1_contradictory", "prob_contradictory", "expected", "hit_intended", "hit_contradictory")
LENGTH_GROUPS = {True: "same length", False: "length differs"}
BAND_NOTE = (f"bands: {BAND_LEVEL:.0%} percentile bootstrap of the category's mean over its pairs "
             f"({BAND_RESAMPLES} resamples, seed {BAND_SEED}); grey: the other categories' means")


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
    shares = [np.asarray(data[f"bos_share_{side}"]).reshape(len(ids), n_layers) for side in ("intended", "contradictory")]
    matched = pair_table["length_matched"]
    by_category, profile_rows = _group_rows(categories, first, pair_table, shares)
    for row in by_category:
        keep = np.array([row["category"] in (c, "all") for c in categories])
        split = length_split(np.array(categories)[keep], np.array(matched)[keep], np.array(pair_table["mean_js"])[keep])
        row.update(n_length_mismatched=split["n_mismatched"], mean_js_matched=split["mean_js_matched"],
                   mean_js_mismatched=split["mean_js_mismatched"])
    groups = [LENGTH_GROUPS[bool(m)] for m in matched]
    by_length = [r for name in LENGTH_GROUPS.values() for r in _group_rows(groups, first, pair_table, shares)[0]
                 if r["category"] == name]
    write_tables(layers, store.folder, "layers")
    write_tables(pa.table(pair_table), store.folder, "pairs")
    kinds = [{"kind": "all" if r["category"] == "all" else "category", **r} for r in by_category]
    kinds += [{"kind": "length", **r} for r in by_length]
    write_tables(pa.Table.from_pylist(_finite(kinds)), store.folder, "summary")  # no mean: null, not NaN
    write_tables(pa.Table.from_pylist(profile_rows), store.folder, "bos_profile")
    summary = {"command": "sweep", "schema": SUMMARY_SCHEMA, "model": model_name, "pairs": len(ids),
               "layers": n_layers, "threshold": threshold, "align": store.settings["align"], "categories": by_category,
               "length_groups": by_length, "length_split": length_split(categories, matched, pair_table["mean_js"])}
    summary = _finite(summary)
    atomic_write(store.folder / SUMMARY_JSON, lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2) + "\n"))
    atomic_write(store.folder / "summary.md", lambda tmp: Path(tmp).write_text(markdown(summary)))
    figures.divergence_curves(curve_bands(categories, js), threshold, store.folder / "divergence_by_category.png",
                              f"JS divergence by layer — {model_name}", BAND_NOTE)
    bottleneck = {r["category"]: r["bottleneck_layer"] for r in by_category}
    per_category = {name: np.array([r["bos_share"] for r in profile_rows if r["category"] == name])
                    for name in bottleneck if name != "all"}
    figures.bos_share_profile(per_category, bottleneck, store.folder / "bos_profile.png",
                              f"first-position (BOS) share of the prediction row — {model_name}")
    return summary


def _group_rows(labels: list[str], first: list[float], pair_table: dict, shares) -> tuple[list[dict], list[dict]]:
    """Summary rows per label (and ``all``), with BOS bottleneck and hits, and the label x layer BOS profile."""
    rows = category_summary(labels, first, pair_table["peak_layer"], pair_table["area"], pair_table["mean_js"])
    profile_rows, bottleneck = bos_profile(labels, *shares)
    for row in rows:
        row["bottleneck_layer"] = bottleneck[row["category"]]
        row["bottleneck_share"] = next(r["bos_share"] for r in profile_rows
                                       if r["category"] == row["category"] and r["layer"] == bottleneck[row["category"]])
        hits = [h for c, h in zip(labels, pair_table["hit_intended"]) if h is not None and row["category"] in (c, "all")]
        row["n_expected"], row["n_hit_intended"] = len(hits), sum(hits)
    return rows, profile_rows


ALIGN_TEXT = {"tokens": "aligned by tokens (shared tokens matched one to one, each differing span one unit)",
              "start": "aligned at the first position", "end": "aligned at the prediction position"}


def markdown(summary: dict) -> str:
    """A short markdown report: the category table, the length-matched split and how to read them."""
    lines = [f"# Sweep summary — {summary['model']}", "",
             f"{summary['pairs']} pairs, {summary['layers']} layers; JS divergence (bits) between the prediction "
             f"position's attention in the intended and the contradictory prompt, "
             f"{ALIGN_TEXT.get(summary['align'], summary['align'])}; first divergence = first layer with "
             f"JS > {summary['threshold']:g}.", "",
             "| category | pairs | peak layer [95% CI] | first divergence [95% CI] (never) | area [95% CI] "
             "| mean JS | BOS bottleneck (share) | expected produced | length differs | mean JS same / differing length |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary["categories"] + [{**r, "n_length_mismatched": None} for r in summary["length_groups"]]:
        hit = f"{r['n_hit_intended']}/{r['n_expected']}" if r["n_expected"] else "-"
        split = ("| - | - |" if r["n_length_mismatched"] is None else
                 f"| {r['n_length_mismatched']} | {format_num(r['mean_js_matched'], 4)} / "
                 f"{format_num(r['mean_js_mismatched'], 4)} |")
        lines.append(f"| {r['category']} | {r['n_pairs']} | {format_ci(r, 'peak_layer', 1)} | "
                     f"{format_ci(r, 'first_layer', 1)} ({r['n_never']}) | {format_ci(r, 'area', 3)} | {format_num(r['mean_js'], 4)} | "
                     f"L{r['bottleneck_layer']} ({format_num(r['bottleneck_share'], 3)}) | {hit} {split}")
    lines += ["", length_line(summary["length_split"]), "",
              "Figures: `divergence_by_category.png`, `bos_profile.png`. Tables: `pairs.*`, `layers.*`, "
              "`summary.*`, `bos_profile.*` (Parquet and CSV).", ""]
    return "\n".join(lines)


def length_line(split: dict) -> str:
    """One sentence: mean JS of pairs whose prompts differ in token count against same-length pairs."""
    if not split["n_mismatched"] or not split["n_matched"]:
        kind = "have the same token count" if split["n_matched"] else "differ in token count"
        return f"Every pair's two prompts {kind}; no length split."
    return (f"Mean JS of the {split['n_mismatched']} pairs whose prompts differ in token count: "
            f"{format_num(split['mean_js_mismatched'], 4)}, {format_num(split['ratio'], 1)}× that of the "
            f"{split['n_matched']} same-length pairs ({format_num(split['mean_js_matched'], 4)}); "
            f"{format_num(split['ratio_within_categories'], 1)}× within categories (same-length means weighted "
            f"by each category's length-differing pairs).")


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
