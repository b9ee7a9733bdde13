"""A sweep's tables and summary computed from its stored rows: pure (rows in, tables out; nothing written or drawn).

sweep_report.py stores what this computes (Parquet, CSV, summary.json, summary.md) and draws its figures;
views.experiments reads the stored summary back, checking its layout (SUMMARY_SCHEMA).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from lmxray.analysis.bootstrap import curve_bands
from lmxray.analysis.divergence import bos_profile, category_summary, curve_metrics, length_split
from lmxray.experiments.datasets import Pair

SUMMARY_SCHEMA = 2  # summary.json layout: 2 adds the length-matched split
LAYER_COLUMNS = ("id", "category", "layer", "js", "bos_share_intended", "bos_share_contradictory",
                 "expected_share_intended")
PAIR_COLUMNS = ("n_tokens_intended", "n_tokens_contradictory", "length_matched", "n_shared_tokens",
                "differs_intended", "differs_contradictory", "top1_intended", "prob_intended",
                "top1_contradictory", "prob_contradictory", "expected", "hit_intended", "hit_contradictory",
                "intended", "contradictory")  # the full prompts last: a CSV reader sees the short columns first
LENGTH_GROUPS = {True: "same length", False: "length differs"}


@dataclass
class SweepTables:
    """Everything a sweep's run folder holds, in memory: the tables, summary.json's content and the figures' data."""

    layers: pa.Table  # one row per pair and layer (LAYER_COLUMNS), pairs in dataset order
    pairs: pa.Table  # one row per pair: curve metrics and the pair's own columns (PAIR_COLUMNS)
    summary_rows: list[dict]  # summary.*: a row per category, "all" and length group (``kind`` says which)
    bos_profile: list[dict]  # bos_profile.*: first-position share per category and layer
    summary: dict  # summary.json
    bands: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # category -> JS mean, low, high per layer
    bos_curves: dict[str, np.ndarray]  # category -> first-position share per layer
    bottleneck: dict[str, int]  # category (and "all") -> layer of the lowest first-position share


def compute_sweep(stored: pa.Table, pairs: list[Pair], threshold: float, model_name: str,
                  align: str) -> SweepTables:
    """The tables of the stored rows of ``pairs`` (in dataset order; rows of other pairs are left out)."""
    order = {p.id: i for i, p in enumerate(pairs)}
    data = stored.to_pydict()
    keep = [i for i, pid in enumerate(data["id"]) if pid in order]
    keep.sort(key=lambda i: (order[data["id"][i]], data["layer"][i]))
    data = {name: [values[i] for i in keep] for name, values in data.items()}
    layers = pa.table({name: data[name] for name in LAYER_COLUMNS},
                      schema=pa.schema([stored.schema.field(n) for n in LAYER_COLUMNS]))
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
    kinds = [{"kind": "all" if r["category"] == "all" else "category", **r} for r in by_category]
    kinds += [{"kind": "length", **r} for r in by_length]
    summary = {"command": "sweep", "schema": SUMMARY_SCHEMA, "model": model_name, "pairs": len(ids),
               "layers": n_layers, "threshold": threshold, "align": align, "categories": by_category,
               "length_groups": by_length, "length_split": length_split(categories, matched, pair_table["mean_js"])}
    bottleneck = {r["category"]: r["bottleneck_layer"] for r in by_category}
    return SweepTables(
        layers=layers, pairs=pa.table(pair_table), summary_rows=finite(kinds),  # no mean: null, not NaN
        bos_profile=profile_rows, summary=finite(summary), bands=curve_bands(categories, js),
        bos_curves={name: np.array([r["bos_share"] for r in profile_rows if r["category"] == name])
                    for name in bottleneck if name != "all"},
        bottleneck=bottleneck)


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


def finite(obj):
    """NaN becomes null so the JSON stays standard."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
