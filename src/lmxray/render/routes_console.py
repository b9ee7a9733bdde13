"""Terminal summary of the routes view (lmxray.views.routes) for ``lmxray flow --method routes``; computes nothing."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from lmxray.render.console import show
from lmxray.views.routes import RoutesView


def print_routes(out: Console, view: RoutesView, top: int) -> None:
    """Header, then per layer (top to bottom) the ``top`` strongest kept attention edges and MLP blocks."""
    m, p = view.model_info, view.position
    out.print(f"[bold]{m['name']}[/bold] ({m['architecture']}, {m['n_layers']} layers x {m['n_heads']} heads, "
              f"{m['dtype']})")
    out.print(f"prompt: {show(view.prompt)}  ({len(view.tokens)} tokens)", soft_wrap=True)
    out.print(f"position {p} {show(view.tokens[p])}: prediction [bold]{show(view.prediction['text'])}[/bold]"
              f"  confidence {view.prediction['prob']:.4f}")
    kinds = Counter(e["kind"] for e in view.edges)
    out.print(f"routes into the prediction at threshold {view.threshold:g}: {len(view.nodes)} nodes, "
              f"{len(view.edges)} edges ({kinds['attn']} attention, {kinds['mlp']} MLP, {kinds['residual']} residual)",
              soft_wrap=True)
    table = Table(title="strongest kept edges per layer: source token@position -> position, importance (top head)",
                  title_justify="left")
    table.add_column("layer", justify="right")
    table.add_column(f"attention (top {top})")
    table.add_column(f"MLP (top {top})")
    for row in reversed(view.layers):
        attn = [f"{show(r.source_token)}@{r.source} -> {r.target} {r.importance:.2f} [dim](h{r.top_head} "
                f"{r.top_head_importance:.2f})[/dim]" for r in row.attention[:top]]
        more = len(row.attention) - top
        if more > 0:
            attn.append(f"[dim](+{more} more)[/dim]")
        mlp = [f"{show(r.token)}@{r.position} {r.importance:.2f}" for r in row.mlp[:top]]
        table.add_row(str(row.layer), ", ".join(attn) or "[dim]-[/dim]", ", ".join(mlp) or "[dim]-[/dim]")
    out.print(table)
    out.print(f"max relative error, sum of the parts vs the true residual: {view.max_error:.2e}")
    if view.out is not None:
        out.print(f"routes graph written to {view.out}", soft_wrap=True)
