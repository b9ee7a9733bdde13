"""Store a sweep's computed tables in its run folder (Parquet, CSV, summary.json, summary.md) and draw its figures.

``finish_sweep`` composes the three steps: compute (sweep_summary.compute_sweep, pure), store, draw.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa

from lmxray.analysis.bootstrap import BAND_LEVEL, BAND_RESAMPLES, BAND_SEED
from lmxray.errors import LmxrayError
from lmxray.experiments.datasets import Pair
from lmxray.experiments.store import SUMMARY_JSON, RunStore, atomic_write, write_tables
from lmxray.experiments.sweep_summary import SweepTables, compute_sweep
from lmxray.render import experiment_figures as figures

BAND_NOTE = (f"bands: {BAND_LEVEL:.0%} percentile bootstrap of the category's mean over its pairs "
             f"({BAND_RESAMPLES} resamples, seed {BAND_SEED}); grey: the other categories' means")


def finish_sweep(store: RunStore, pairs: list[Pair], threshold: float, model_name: str) -> dict:
    """Write every output of the run folder from its parts (in dataset order) and return the summary."""
    stored = store.read()
    if stored is None:
        raise LmxrayError(f"{store.folder} holds no results yet", "run the sweep first")
    tables = compute_sweep(stored, pairs, threshold, model_name, store.settings["align"])
    store_sweep(store.folder, tables)
    draw_sweep(store.folder, tables)
    return tables.summary


def store_sweep(folder: Path, tables: SweepTables) -> None:
    """Write the tables (Parquet and CSV), summary.json and summary.md into ``folder``, each atomically."""
    write_tables(tables.layers, folder, "layers")
    write_tables(tables.pairs, folder, "pairs")
    write_tables(pa.Table.from_pylist(tables.summary_rows), folder, "summary")
    write_tables(pa.Table.from_pylist(tables.bos_profile), folder, "bos_profile")
    text = json.dumps(tables.summary, indent=2) + "\n"
    atomic_write(folder / SUMMARY_JSON, lambda tmp: Path(tmp).write_text(text))
    atomic_write(folder / "summary.md", lambda tmp: Path(tmp).write_text(markdown(tables.summary)))


def draw_sweep(folder: Path, tables: SweepTables) -> None:
    """The JS curves per category with bootstrap bands, and the first-position share profile, as PNGs in ``folder``."""
    model, threshold = tables.summary["model"], tables.summary["threshold"]
    figures.divergence_curves(tables.bands, threshold, folder / "divergence_by_category.png",
                              f"JS divergence by layer — {model}", BAND_NOTE)
    figures.bos_share_profile(tables.bos_curves, tables.bottleneck, folder / "bos_profile.png",
                              f"first-position (BOS) share of the prediction row — {model}")


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

