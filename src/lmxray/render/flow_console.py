"""Terminal tables of the flow view (lmxray.views.flow_view) for ``lmxray flow``. Nothing here computes."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from lmxray.flow.result import Flow
from lmxray.render.console import show
from lmxray.views.flow import SINK_NOTE, FlowView, flow_view

MAX_ATTRIBUTION_ROWS = 15  # sources listed in the attribution table; --json has them all


def _columns(view: FlowView) -> list[tuple[str, list[float]]]:
    """(header, contributions) per attributed token, then the contrast A - B when asked for."""
    cols = [(show(a.text), a.contributions) for a in view.attribution]
    if view.contrast is not None:
        cols.append((f"{view.contrast.a['text']!r} - {view.contrast.b['text']!r}", view.contrast.contributions))
    return cols


def print_flow(out: Console, view: FlowView, top: int) -> None:
    """The flow view as tables: per layer the largest sources at the position, then the logit attribution."""
    m, p, c = view.model_info, view.position, view.contrast
    out.print(f"[bold]{m['name']}[/bold] ({m['architecture']}, {m['n_layers']} layers, {m['dtype']})")
    out.print(f"prompt: {show(view.prompt)}  ({len(view.tokens)} tokens, {view.n_sources} sources + bias)")
    out.print(f"position {p} {show(view.tokens[p])}: prediction [bold]{show(view.attribution[0].text)}[/bold]"
              + ("" if view.confidence is None else f"  confidence {view.confidence:.4f}"))
    out.print(f"[dim]{SINK_NOTE}[/dim]", soft_wrap=True)

    sources, content = view.sources, list(range(1, len(view.sources) - 1))  # view.sources: reaching, bias last
    table = Table(title=f"sources of the residual at position {p}: share of the total (attention / MLP share)",
                  title_justify="left")
    table.add_column("layer", justify="right")
    table.add_column(f"first {show(sources[0])}", justify="right")
    table.add_column("'<bias>'", justify="right")
    top = min(top, len(content))  # no empty columns (and no endless loop for a huge --top-k)
    for i in range(top):
        table.add_column(f"#{i + 1}")
    for row in view.layers:
        share = row.total_share
        order = sorted(content, key=lambda s: -share[s])[:top]
        cells = [f"{show(sources[s])} {100 * share[s]:.0f}% "
                 f"[dim]({100 * row.attention_share[s]:.0f} / {100 * row.mlp_share[s]:.0f})[/dim]" for s in order]
        table.add_row(str(row.layer), f"{100 * share[0]:.0f}%", f"{100 * share[-1]:.0f}%", *cells)
    out.print(table)

    cols = _columns(view)
    parts = list(view.attribution) + ([c] if c is not None else [])  # sink / content / bias / sum per column
    attr = Table(title=f"direct logit attribution at position {p} (sums to the logit)", title_justify="left")
    attr.add_column("source")
    for header, _ in cols:
        attr.add_column(header, justify="right")
    rank = cols[-1][1] if c is not None else cols[0][1]
    order = sorted(content, key=lambda s: -abs(rank[s]))
    for s in order[:MAX_ATTRIBUTION_ROWS]:
        attr.add_row(show(sources[s]), *(f"{col[s]:+.4f}" for _, col in cols))
    if len(order) > MAX_ATTRIBUTION_ROWS:
        attr.add_row(f"[dim]({len(order) - MAX_ATTRIBUTION_ROWS} more)[/dim]", *("" for _ in cols))
    attr.add_row("[bold]content sources[/bold]", *(f"{x.content:+.4f}" for x in parts))
    attr.add_row(f"first {show(sources[0])} (sink)", *(f"{x.sink:+.4f}" for x in parts))
    attr.add_row(show(sources[-1]), *(f"{x.bias:+.4f}" for x in parts))
    attr.add_row("[bold]sum[/bold]", *(f"{x.sum:+.4f}" for x in parts))
    logits = [a.logit for a in view.attribution] + ([c.difference] if c is not None else [])
    attr.add_row("[bold]logit[/bold]" + (" (difference for A - B)" if c is not None else ""),
                 *(f"{v:+.4f}" for v in logits))
    out.print(attr)
    if c is not None:
        out.print(f"contrast {cols[-1][0]}: logit difference {c.difference:+.4f} = content {c.content:+.4f} "
                  f"+ first {show(sources[0])} {c.sink:+.4f} + bias {c.bias:+.4f}", soft_wrap=True)
    out.print(f"max relative error, sum over sources vs the true residual: {view.max_error:.2e}")
    if view.out is not None:
        out.print(f"trace with flow records written to {view.out}")


def flow_json(flow: Flow, path: Path | None) -> dict:
    """The flow view's JSON form (lmxray.views.flow_view), as `lmxray flow --json` prints it."""
    return flow_view(flow, path).to_dict()
