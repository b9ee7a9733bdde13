"""Terminal tables and the JSON payload for ``lmxray flow``. Nothing here computes beyond sorting and formatting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from lmxray.flow.result import Flow
from lmxray.render.console import show
from lmxray.views.flow import SINK_NOTE, content as _content, flow_view, split_totals

MAX_ATTRIBUTION_ROWS = 15  # sources listed in the attribution table; --json has them all


def _columns(flow: Flow) -> list[tuple[str, np.ndarray]]:
    """(header, contributions) per attributed token, then the contrast A - B when asked for."""
    cols = [(show(a.text), a.contributions) for a in flow.logits]
    if flow.contrast is not None:
        cols.append((flow.contrast.text, flow.contrast.contributions))
    return cols


def print_flow(out: Console, flow: Flow, top: int, path: Path | None) -> None:
    m, p = flow.model, flow.position
    out.print(f"[bold]{m.name}[/bold] ({m.architecture}, {m.n_layers} layers, {m.dtype})")
    out.print(f"prompt: {show(flow.prompt)}  ({len(flow.token_ids)} tokens, {len(flow.sources) - 1} sources + bias)")
    out.print(f"position {p} {show(flow.tokens[p])}: prediction [bold]{show(flow.logits[0].text)}[/bold]"
              + (f"  confidence {flow.top_k[0].prob:.4f}" if flow.top_k else ""))
    out.print(f"[dim]{SINK_NOTE}[/dim]", soft_wrap=True)

    shares = {k: flow.shares(k)[:, p] for k in ("total", "attention", "mlp")}  # [layer, source]
    content, bias = _content(flow), len(flow.sources) - 1
    table = Table(title=f"sources of the residual at position {p}: share of the total (attention / MLP share)",
                  title_justify="left")
    table.add_column("layer", justify="right")
    table.add_column(f"first {show(flow.sources[0])}", justify="right")
    table.add_column("'<bias>'", justify="right")
    top = min(top, len(content))  # no empty columns (and no endless loop for a huge --top-k)
    for i in range(top):
        table.add_column(f"#{i + 1}")
    for layer in range(shares["total"].shape[0]):
        order = sorted(content, key=lambda s: -shares["total"][layer, s])[:top]
        cells = [f"{show(flow.sources[s])} {100 * shares['total'][layer, s]:.0f}% "
                 f"[dim]({100 * shares['attention'][layer, s]:.0f} / {100 * shares['mlp'][layer, s]:.0f})[/dim]"
                 for s in order]
        table.add_row(str(layer), f"{100 * shares['total'][layer, 0]:.0f}%", f"{100 * shares['total'][layer, bias]:.0f}%",
                      *cells)
    out.print(table)

    cols = _columns(flow)
    attr = Table(title=f"direct logit attribution at position {p} (sums to the logit)", title_justify="left")
    attr.add_column("source")
    for header, _ in cols:
        attr.add_column(header, justify="right")
    rank = flow.contrast.contributions if flow.contrast is not None else flow.logits[0].contributions
    order = sorted(content, key=lambda s: -abs(rank[s]))
    for s in order[:MAX_ATTRIBUTION_ROWS]:
        attr.add_row(show(flow.sources[s]), *(f"{c[s]:+.4f}" for _, c in cols))
    if len(order) > MAX_ATTRIBUTION_ROWS:
        attr.add_row(f"[dim]({len(order) - MAX_ATTRIBUTION_ROWS} more)[/dim]", *("" for _ in cols))
    attr.add_row("[bold]content sources[/bold]", *(f"{split_totals(flow, c)['content']:+.4f}" for _, c in cols))
    attr.add_row(f"first {show(flow.sources[0])} (sink)", *(f"{c[0]:+.4f}" for _, c in cols))
    attr.add_row(show(flow.sources[-1]), *(f"{c[-1]:+.4f}" for _, c in cols))
    totals = [a.total for a in flow.logits] + ([float(flow.contrast.contributions.sum())] if flow.contrast else [])
    logits = [a.logit for a in flow.logits] + ([flow.contrast.difference] if flow.contrast else [])
    attr.add_row("[bold]sum[/bold]", *(f"{t:+.4f}" for t in totals))
    attr.add_row("[bold]logit[/bold]" + (" (difference for A - B)" if flow.contrast else ""),
                 *(f"{v:+.4f}" for v in logits))
    out.print(attr)
    if flow.contrast is not None:
        c = flow.contrast
        parts = split_totals(flow, c.contributions)
        out.print(f"contrast {c.text}: logit difference {c.difference:+.4f} = content {parts['content']:+.4f} "
                  f"+ first {show(flow.sources[0])} {parts['sink']:+.4f} + bias {parts['bias']:+.4f}", soft_wrap=True)
    out.print(f"max relative error, sum over sources vs the true residual: {flow.max_error:.2e}")
    if path is not None:
        out.print(f"trace with flow records written to {path}")


def flow_json(flow: Flow, path: Path | None) -> dict:
    """The flow view's JSON form (lmxray.views.flow_view): layers over the sources reaching the position, attribution."""
    return flow_view(flow, path).to_dict()
