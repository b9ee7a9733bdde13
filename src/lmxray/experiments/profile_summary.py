"""A profile's tables and summary computed from its stored rows: pure (rows in, tables out; nothing written or drawn).

profile_report.py stores what this computes (Parquet, CSV, summary.json) and draws its figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from lmxray.analysis.profile_stats import SAMPLE_STATS, across_samples, coefficient_of_variation, most_sensitive_layers
from lmxray.experiments.datasets import Sample
from lmxray.experiments.profile import ProfileConfig, sample_key, select


@dataclass
class ProfileTables:
    """Everything a profile's run folder holds, in memory: the tables, summary.json's content and the figures' data."""

    samples: pa.Table  # one row per sample and layer: the per-sample statistics, corpora and samples in order
    profile: list[dict]  # profile.*: per corpus and layer, mean / std / var of each statistic across samples
    ranking: list[dict]  # ranking.*: per corpus the most input-sensitive layers, raw variance and std / mean
    summary: dict  # summary.json
    abs_mean: dict[str, tuple[np.ndarray, np.ndarray]]  # corpus -> mean |Δ| per layer: mean and std across samples
    variance: dict[str, np.ndarray]  # corpus -> variance of mean |Δ| across samples, per layer
    cv: dict[str, np.ndarray]  # corpus -> std / mean of mean |Δ| across samples, per layer
    signed_mean: dict[str, tuple[np.ndarray, np.ndarray]]  # corpus -> signed mean Δ per layer: mean and std


def compute_profile(stored: pa.Table, corpora: dict[str, list[Sample]], config: ProfileConfig, model_name: str,
                    top: int = 5) -> ProfileTables:
    """The tables of the stored rows of the samples ``config`` selects from ``corpora`` (others are left out)."""
    wanted = {sample_key(s): (n, i) for n, (name, samples) in enumerate(select(corpora, config).items())
              for i, s in enumerate(samples)}
    data = stored.to_pydict()
    keep = sorted((i for i, key in enumerate(data["id"]) if key in wanted),
                  key=lambda i: (wanted[data["id"][i]], data["layer"][i]))
    data = {name: [values[i] for i in keep] for name, values in data.items() if name != "id"}
    n_layers = max(data["layer"]) + 1
    tables = ProfileTables(samples=pa.table(data), profile=[], ranking=[], summary={}, abs_mean={}, variance={},
                           cv={}, signed_mean={})
    summary_corpora = []
    for name in corpora:
        rows = [i for i, c in enumerate(data["corpus"]) if c == name]
        if not rows:
            continue
        values = {stat: np.asarray([data[stat][i] for i in rows]).reshape(-1, n_layers) for stat in SAMPLE_STATS}
        agg = {stat: across_samples(values[stat]) for stat in SAMPLE_STATS}
        n_samples = values["mean"].shape[0]
        cv = coefficient_of_variation(agg["abs_mean"]["mean"], agg["abs_mean"]["std"])
        for layer in range(n_layers):
            tables.profile.append({"corpus": name, "layer": layer, "n_samples": n_samples,
                                   **{f"{stat}_{k}": float(agg[stat][k][layer]) for stat in SAMPLE_STATS
                                      for k in ("mean", "std", "var")}, "abs_mean_cv": float(cv[layer])})
        ranked = most_sensitive_layers(agg["abs_mean"]["var"], top)
        relative = most_sensitive_layers(cv, top)  # beside the raw variance: spread relative to the layer's size
        tables.ranking += [{"corpus": name, "rank": r + 1, "layer": layer,
                            "abs_mean_var": float(agg["abs_mean"]["var"][layer]), "layer_by_cv": rel,
                            "abs_mean_cv": float(cv[rel])} for r, (layer, rel) in enumerate(zip(ranked, relative))]
        firsts = rows[::n_layers]
        summary_corpora.append({
            "corpus": name, "samples": n_samples, "tokens": sum(data["n_tokens"][i] for i in firsts),
            "truncated": sum(bool(data["truncated"][i]) for i in firsts), "most_sensitive_layers": ranked,
            "most_sensitive_layers_relative": relative,
        })
        tables.abs_mean[name] = (agg["abs_mean"]["mean"], agg["abs_mean"]["std"])
        tables.variance[name] = agg["abs_mean"]["var"]
        tables.cv[name] = cv
        tables.signed_mean[name] = (agg["mean"]["mean"], agg["mean"]["std"])
    tables.summary = {"command": "profile", "model": model_name, "layers": n_layers, "max_tokens": config.max_tokens,
                      "corpora": summary_corpora}
    return tables
