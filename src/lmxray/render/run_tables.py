"""Terminal tables of the run-folder views (lmxray.views.experiments): a sweep's and a profile's summary."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from lmxray.experiments.sweep_report import format_num, length_line
from lmxray.views import ProfileView, SweepView


def print_sweep(out: Console, view: SweepView) -> None:
    """The category and length-group rows of a sweep, its length split, and where the run folder is."""
    table = Table(title=f"sweep of {view.pairs} pairs on {view.model} ({view.layers} layers, "
                        f"--align {view.align}, JS threshold {view.threshold:g}); "
                        "means (95% intervals and each category's length split in summary.md)",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in ("category", "n", "peak L", "first", "never", "area", "JS", "BOS peak", "hits"):
        table.add_column(name, justify="left" if name == "category" else "right", no_wrap=True)
    for r in view.categories + view.length_groups:
        table.add_row(r["category"], str(r["n_pairs"]), format_num(r["peak_layer"], 1),
                      format_num(r["first_layer"], 1), str(r["n_never"]), format_num(r["area"], 3),
                      format_num(r["mean_js"], 4), f"L{r['bottleneck_layer']} {format_num(r['bottleneck_share'], 2)}",
                      f"{r['n_hit_intended']}/{r['n_expected']}" if r["n_expected"] else "-",
                      end_section=r is view.categories[-2] or r is view.categories[-1])
    out.print(table)
    out.print(length_line(view.length_split))
    out.print(f"run folder: {view.run} (summary.md, pairs/layers/summary/bos_profile .parquet + .csv, figures)")


def print_profile(out: Console, view: ProfileView) -> None:
    """Per corpus: samples, tokens, truncations and the most input-sensitive layers, raw and relative."""
    table = Table(title=f"profile of {view.model} ({view.layers} layers, samples cut to {view.max_tokens} tokens)")
    for name, justify in (("corpus", "left"), ("samples", "right"), ("tokens", "right"), ("truncated", "right"),
                          ("most input-sensitive layers (variance of mean |Δ|)", "left")):
        table.add_column(name, justify=justify)
    for r in view.corpora:
        table.add_row(r["corpus"], str(r["samples"]), str(r["tokens"]), str(r["truncated"]),
                      ", ".join(f"L{layer}" for layer in r["most_sensitive_layers"]))
    out.print(table)
    relative = Table(title="relative ranking: std / mean of mean |Δ| across samples")
    relative.add_column("corpus")
    relative.add_column("most variable layers relative to their size")
    for r in view.corpora:
        relative.add_row(r["corpus"], ", ".join(f"L{layer}" for layer in r["most_sensitive_layers_relative"]) or "-")
    out.print(relative)
    out.print(f"run folder: {view.run} (profile/samples/ranking .parquet + .csv, profile_abs_mean.png, "
              "profile_variance.png, profile_signed_mean.png)")
