"""Terminal tables of the views (lmxray.views); --json prints the same views' to_dict(). Nothing here computes."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from lmxray.analysis.convergence import Summary
from lmxray.views import CompareView, TraceView

MAX_ROWS = 20  # convergence rows shown in the terminal; --json has them all
_STATUS_STYLE = {"expected": "green", "unexpected": "dark_orange"}


def show(text: str) -> str:
    """A token's text made visible in a table: quoted, with whitespace escaped."""
    return repr(text)


def print_trace(out: Console, view: TraceView) -> None:
    """The trace summary view as tables: header, top-k, convergence rows (capped) and summary metrics."""
    m, conv = view.model, view.convergence
    out.print(f"[bold]{m['name']}[/bold] ({m['architecture']}, {m['n_layers']} layers x {m['n_heads']} heads, "
              f"{m['dtype']})")
    out.print(f"prompt: {show(view.prompt)}  ({len(view.tokens)} tokens)")
    out.print(f"prediction at position {view.position}: [bold]{show(view.predicted_text)}[/bold]"
              f"  confidence {view.confidence:.4f}")

    top = Table(title="top-k candidates", title_justify="left")
    top.add_column("rank", justify="right")
    top.add_column("token")
    top.add_column("id", justify="right")
    top.add_column("prob", justify="right")
    for i, s in enumerate(view.top_k, 1):
        top.add_row(str(i), show(s["text"]), str(s["token_id"]), f"{s['prob']:.4f}")
    out.print(top)

    table = Table(title=f"convergence at position {conv.position}: attention mass summed over "
                        f"{conv.n_layers} layers x {conv.n_heads} heads", title_justify="left")
    for name, justify in (("pos", "right"), ("token", "left"), ("mass", "right"), ("share", "right"),
                          ("status", "left")):
        table.add_column(name, justify=justify)
    for r in conv.rows[:MAX_ROWS]:
        style = _STATUS_STYLE.get(r.status, "")
        table.add_row(str(r.position), show(r.token), f"{r.mass:.2f}", f"{100 * r.share:.1f}%",
                      f"[{style}]{r.status}[/{style}]" if style else r.status)
    out.print(table)
    if len(conv.rows) > MAX_ROWS:
        out.print(f"[dim]({len(conv.rows) - MAX_ROWS} more positions; --json lists all)[/dim]")

    out.print(_summary_table(conv.summary))
    if view.out is not None:
        out.print(f"trace written to {view.out}")


def _summary_table(s: Summary) -> Table:
    table = Table(title="summary", title_justify="left", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("first-position sink mass", f"{s.sink_mass:.2f}")
    table.add_row("active positions", f"{s.active_positions} / {s.n_positions}")
    table.add_row("unexpected positions > 0.1", str(s.unexpected_positions))
    table.add_row("expected share", "-" if s.expected_share is None else f"{100 * s.expected_share:.1f}%")
    table.add_row("attention entropy (bits)", f"{s.entropy_bits:.3f}")
    table.add_row("entropy / log2(key positions)", f"{s.entropy_norm:.3f}")
    table.add_row("confidence", f"{s.confidence:.4f}")
    return table


def print_compare(out: Console, view: CompareView) -> None:
    """The compare view as tables: metrics side by side, then per layer JS divergence and shares."""
    table = Table(title="comparison at the prediction position (summed over layers and heads, then "
                        "length-normalised)", title_justify="left")
    table.add_column("metric", no_wrap=True)
    table.add_column("A", justify="right")
    table.add_column("B", justify="right")
    for row in view.metrics:
        table.add_row(row.metric, _fmt(row.a), _fmt(row.b))
    for name, side in (("A", view.a), ("B", view.b)):
        s = view.sides[name.lower()]
        out.print(f"{name}: {side}: {show(s.prompt)} -> {show(s.predicted_text)}", soft_wrap=True)
    if view.models:
        out.print(f"note: {view.models}", soft_wrap=True, markup=False)
    out.print(table)
    if not view.layers:
        out.print("[dim](no per-layer table: a trace has no attention maps)[/dim]")
        return
    per_layer = Table(title=f"per layer at the prediction position (heads summed, rows normalised): JS divergence "
                            f"(keys aligned at the {view.align}), first-position share, entropy / log2(keys)",
                      title_justify="left")
    for name in ("layer", "JS (bits)", "first A", "first B", "H norm A", "H norm B"):
        per_layer.add_column(name, justify="right")
    for r in view.layers:
        per_layer.add_row(str(r.layer), f"{r.js_bits:.4f}", f"{r.first_share_a:.3f}", f"{r.first_share_b:.3f}",
                          f"{r.entropy_norm_a:.3f}", f"{r.entropy_norm_b:.3f}")
    out.print(per_layer)
    out.print(f"peak JS {view.peak_js_bits:.4f} bits at layer {view.peak_layer}; "
              f"mean JS {view.mean_js_bits:.4f} over {len(view.layers)} layers")


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return show(value)
    if isinstance(value, float):
        return f"{value:.4f}" if value < 10 else f"{value:.2f}"
    return str(value)


def models_data(builtins: dict, installed, adapters, cache: Path) -> dict:
    return {
        "builtin": [{"alias": alias, "description": b.description, "install": b.install, "installed": installed(alias)}
                    for alias, b in builtins.items()],
        "architectures": [{"family": a.family, "model_types": list(a.model_types), "norm": a.norm_kind,
                           "mlp": a.mlp_kind, "parallel_residual": a.parallel_residual, "post_norms": a.post_norms}
                          for a in adapters],
        "cache": str(cache),
    }


def print_models(out: Console, data: dict) -> None:
    table = Table(title="built-in models", title_justify="left")
    table.add_column("alias")
    table.add_column("description")
    table.add_column("installed")
    for row in data["builtin"]:
        table.add_row(row["alias"], row["description"], "yes" if row["installed"] else f"no: {row['install']}")
    out.print(table)
    arch = Table(title="supported architectures", title_justify="left")
    for name in ("family", "model_types", "norm", "mlp", "notes"):
        arch.add_column(name)
    for a in data["architectures"]:
        notes = ", ".join(n for n, on in (("parallel residual", a["parallel_residual"]),
                                           ("post-norms", a["post_norms"])) if on)
        arch.add_row(a["family"], ", ".join(a["model_types"]), a["norm"], a["mlp"], notes)
    out.print(arch)
    out.print("model spec forms: ALIAS | path/to/model.gguf | path/to/hf_dir | org/name (local HF cache) | random:SPEC")
    out.print(f"cache: {data['cache']}")
