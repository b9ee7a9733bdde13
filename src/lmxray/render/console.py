"""Terminal rendering (rich tables) and the matching JSON payloads for the CLI. Nothing here computes."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lmxray.analysis.convergence import ConvergenceRow, Summary
from lmxray.trace.types import Trace

MAX_ROWS = 20  # convergence rows shown in the terminal; --json has them all
_STATUS_STYLE = {"expected": "green", "unexpected": "dark_orange"}


def show(text: str) -> str:
    """A token's text made visible in a table: quoted, with whitespace escaped."""
    return repr(text)


def print_trace(out: Console, trace: Trace, rows: list[ConvergenceRow], summary: Summary, path: Path | None) -> None:
    m = trace.model
    out.print(f"[bold]{m.name}[/bold] ({m.architecture}, {m.n_layers} layers x {m.n_heads} heads, {m.dtype})")
    out.print(f"prompt: {show(trace.prompt)}  ({trace.n_tokens} tokens)")
    out.print(f"prediction at position {trace.position}: [bold]{show(trace.predicted_text)}[/bold]"
              f"  confidence {trace.confidence:.4f}")

    top = Table(title="top-k candidates", title_justify="left")
    top.add_column("rank", justify="right")
    top.add_column("token")
    top.add_column("id", justify="right")
    top.add_column("prob", justify="right")
    for i, s in enumerate(trace.top_k, 1):
        top.add_row(str(i), show(s.text), str(s.token_id), f"{s.prob:.4f}")
    out.print(top)

    conv = Table(title=f"convergence at position {trace.position}: attention mass summed over "
                       f"{len(trace.layers)} layers x {m.n_heads} heads", title_justify="left")
    for name, justify in (("pos", "right"), ("token", "left"), ("mass", "right"), ("share", "right"), ("status", "left")):
        conv.add_column(name, justify=justify)
    for r in rows[:MAX_ROWS]:
        style = _STATUS_STYLE.get(r.status, "")
        conv.add_row(str(r.position), show(r.token), f"{r.mass:.2f}", f"{100 * r.share:.1f}%",
                     f"[{style}]{r.status}[/{style}]" if style else r.status)
    out.print(conv)
    if len(rows) > MAX_ROWS:
        out.print(f"[dim]({len(rows) - MAX_ROWS} more positions; --json lists all)[/dim]")

    out.print(_summary_table(summary))
    if path is not None:
        out.print(f"trace written to {path}")


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


def trace_json(trace: Trace, rows: list[ConvergenceRow], summary: Summary, path: Path | None) -> dict:
    return {
        "model": asdict(trace.model),
        "prompt": trace.prompt,
        "tokens": trace.tokens,
        "token_ids": trace.token_ids,
        "position": trace.position,
        "predicted_token": trace.predicted_token,
        "predicted_text": trace.predicted_text,
        "confidence": trace.confidence,
        "top_k": [asdict(s) for s in trace.top_k],
        "expected_attention": {str(q): keys for q, keys in trace.expected_attention.items()},
        "convergence": [asdict(r) for r in rows],
        "summary": summary.as_dict(),
        "out": None if path is None else str(path),
    }


def print_compare(out: Console, name_a: str, name_b: str, a: Trace, b: Trace, rows, layers=(),
                  align: str = "start", models_differ: str | None = None) -> None:
    table = Table(title="comparison at the prediction position (summed over layers and heads, then "
                        "length-normalised)", title_justify="left")
    table.add_column("metric", no_wrap=True)
    table.add_column("A", justify="right")
    table.add_column("B", justify="right")
    for label, va, vb in rows:
        table.add_row(label, _fmt(va), _fmt(vb))
    out.print(f"A: {name_a}: {show(a.prompt)} -> {show(a.predicted_text)}", soft_wrap=True)
    out.print(f"B: {name_b}: {show(b.prompt)} -> {show(b.predicted_text)}", soft_wrap=True)
    if models_differ:
        out.print(f"note: {models_differ}", soft_wrap=True, markup=False)
    out.print(table)
    if not layers:
        out.print("[dim](no per-layer table: a trace has no attention maps)[/dim]")
        return
    per_layer = Table(title=f"per layer at the prediction position (heads summed, rows normalised): JS divergence "
                            f"(keys aligned at the {align}), first-position share, entropy / log2(keys)",
                      title_justify="left")
    for name in ("layer", "JS (bits)", "first A", "first B", "H norm A", "H norm B"):
        per_layer.add_column(name, justify="right")
    for r in layers:
        per_layer.add_row(str(r.layer), f"{r.js_bits:.4f}", f"{r.first_share_a:.3f}", f"{r.first_share_b:.3f}",
                          f"{r.entropy_norm_a:.3f}", f"{r.entropy_norm_b:.3f}")
    out.print(per_layer)
    peak = max(layers, key=lambda r: r.js_bits)
    out.print(f"peak JS {peak.js_bits:.4f} bits at layer {peak.layer}; "
              f"mean JS {sum(r.js_bits for r in layers) / len(layers):.4f} over {len(layers)} layers")


def compare_json(name_a: str, name_b: str, rows, layers, align: str, warning: str | None) -> dict:
    return {"a": name_a, "b": name_b, "warning": warning, "align": align,
            "metrics": [{"metric": m, "a": va, "b": vb} for m, va, vb in rows],
            "layers": [asdict(r) for r in layers]}


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
