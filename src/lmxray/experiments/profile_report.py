"""Turn a profile's stored rows into its tables (per sample, per corpus and layer), layer rankings and figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from lmxray.analysis.profile_stats import SAMPLE_STATS, across_samples, coefficient_of_variation, most_sensitive_layers
from lmxray.errors import LmxrayError
from lmxray.experiments.datasets import Sample
from lmxray.experiments.profile import ProfileConfig, sample_key, select
from lmxray.experiments.store import SUMMARY_JSON, RunStore, atomic_write, write_tables
from lmxray.render import experiment_figures as figures



def finish_profile(store: RunStore, corpora: dict[str, list[Sample]], config: ProfileConfig, model_name: str,
                   top: int = 5) -> dict:
    """Write samples.*, profile.*, ranking.*, the figures and summary.json from the stored parts."""
    stored = store.read()
    if stored is None:
        raise LmxrayError(f"{store.folder} holds no results yet", "run the profile first")
    wanted = {sample_key(s): (n, i) for n, (name, samples) in enumerate(select(corpora, config).items())
              for i, s in enumerate(samples)}
    data = stored.to_pydict()
    keep = sorted((i for i, key in enumerate(data["id"]) if key in wanted),
                  key=lambda i: (wanted[data["id"][i]], data["layer"][i]))
    data = {name: [values[i] for i in keep] for name, values in data.items() if name != "id"}
    write_tables(pa.table(data), store.folder, "samples")
    n_layers = max(data["layer"]) + 1
    profile_rows, ranking_rows, summary_corpora = [], [], []
    plots = {"abs_mean": {}, "var": {}, "cv": {}, "mean": {}}
    for name in corpora:
        rows = [i for i, c in enumerate(data["corpus"]) if c == name]
        if not rows:
            continue
        values = {stat: np.asarray([data[stat][i] for i in rows]).reshape(-1, n_layers) for stat in SAMPLE_STATS}
        agg = {stat: across_samples(values[stat]) for stat in SAMPLE_STATS}
        n_samples = values["mean"].shape[0]
        cv = coefficient_of_variation(agg["abs_mean"]["mean"], agg["abs_mean"]["std"])
        for layer in range(n_layers):
            profile_rows.append({"corpus": name, "layer": layer, "n_samples": n_samples,
                                 **{f"{stat}_{k}": float(agg[stat][k][layer]) for stat in SAMPLE_STATS
                                    for k in ("mean", "std", "var")}, "abs_mean_cv": float(cv[layer])})
        ranked = most_sensitive_layers(agg["abs_mean"]["var"], top)
        relative = most_sensitive_layers(cv, top)  # beside the raw variance: spread relative to the layer's size
        ranking_rows += [{"corpus": name, "rank": r + 1, "layer": layer, "abs_mean_var": float(agg["abs_mean"]["var"][layer]),
                          "layer_by_cv": rel, "abs_mean_cv": float(cv[rel])}
                         for r, (layer, rel) in enumerate(zip(ranked, relative))]
        firsts = rows[::n_layers]
        summary_corpora.append({
            "corpus": name, "samples": n_samples, "tokens": sum(data["n_tokens"][i] for i in firsts),
            "truncated": sum(bool(data["truncated"][i]) for i in firsts), "most_sensitive_layers": ranked,
            "most_sensitive_layers_relative": relative,
        })
        plots["abs_mean"][name] = (agg["abs_mean"]["mean"], agg["abs_mean"]["std"])
        plots["var"][name] = agg["abs_mean"]["var"]
        plots["cv"][name] = cv
        plots["mean"][name] = (agg["mean"]["mean"], agg["mean"]["std"])
    write_tables(pa.Table.from_pylist(profile_rows), store.folder, "profile")
    write_tables(pa.Table.from_pylist(ranking_rows), store.folder, "ranking")
    summary = {"command": "profile", "model": model_name, "layers": n_layers, "max_tokens": config.max_tokens, "corpora": summary_corpora}
    atomic_write(store.folder / SUMMARY_JSON, lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2) + "\n"))
    figures.profile_abs_mean(plots["abs_mean"], store.folder / "profile_abs_mean.png",
                             f"mean |Δ residual| per layer (± std across samples) — {model_name}")
    figures.profile_variance(plots["var"], plots["cv"], store.folder / "profile_variance.png",
                             f"input sensitivity of each layer's mean |Δ| across samples — {model_name}")
    figures.profile_signed_mean(plots["mean"], store.folder / "profile_signed_mean.png",
                                f"signed mean of each layer's Δ residual (± std across samples) — {model_name}")
    return summary
