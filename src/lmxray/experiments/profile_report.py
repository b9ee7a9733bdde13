"""Store a profile's computed tables in its run folder (Parquet, CSV, summary.json) and draw its figures.

``finish_profile`` composes the three steps: compute (profile_summary.compute_profile, pure), store, draw.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from lmxray.errors import LmxrayError
from lmxray.experiments.datasets import Sample
from lmxray.experiments.profile import ProfileConfig
from lmxray.experiments.profile_summary import ProfileTables, compute_profile
from lmxray.experiments.store import SUMMARY_JSON, RunStore, atomic_write, write_tables
from lmxray.render import experiment_figures as figures


def finish_profile(store: RunStore, corpora: dict[str, list[Sample]], config: ProfileConfig, model_name: str,
                   top: int = 5) -> dict:
    """Write samples.*, profile.*, ranking.*, the figures and summary.json from the stored parts."""
    stored = store.read()
    if stored is None:
        raise LmxrayError(f"{store.folder} holds no results yet", "run the profile first")
    tables = compute_profile(stored, corpora, config, model_name, top)
    store_profile(store.folder, tables)
    draw_profile(store.folder, tables)
    return tables.summary


def store_profile(folder: Path, tables: ProfileTables) -> None:
    """Write the tables (Parquet and CSV) and summary.json into ``folder``, each atomically."""
    write_tables(tables.samples, folder, "samples")
    write_tables(pa.Table.from_pylist(tables.profile), folder, "profile")
    write_tables(pa.Table.from_pylist(tables.ranking), folder, "ranking")
    text = json.dumps(tables.summary, indent=2) + "\n"
    atomic_write(folder / SUMMARY_JSON, lambda tmp: Path(tmp).write_text(text))


def draw_profile(folder: Path, tables: ProfileTables) -> None:
    """Mean |Δ| per layer, its variance and relative spread, and the signed mean, as PNGs in ``folder``."""
    model = tables.summary["model"]
    figures.profile_abs_mean(tables.abs_mean, folder / "profile_abs_mean.png",
                             f"mean |Δ residual| per layer (± std across samples) — {model}")
    figures.profile_variance(tables.variance, tables.cv, folder / "profile_variance.png",
                             f"input sensitivity of each layer's mean |Δ| across samples — {model}")
    figures.profile_signed_mean(tables.signed_mean, folder / "profile_signed_mean.png",
                                f"signed mean of each layer's Δ residual (± std across samples) — {model}")
