"""Terminal tables and the JSON payload for ``lmxray flow``. Nothing here computes beyond sorting and formatting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from lmxray.flow.result import Flow
from lmxray.render.console import show

MAX_ATTRIBUTION_ROWS = 15  # sources listed in the attribution table; --json has them all


def _reached(flow: Flow) -> list[int]:
    """Indices on the source axis that can reach the flow's position (tokens at or before it, then the bias)."""
    return list(range(flow.reached(flow.position))) + [len(flow.sources) - 1]


def print_flow(out: Console, flow: Flow, top: int, path: Path | None) -> None:
    m, p = flow.model, flow.position
    out.print(f"[bold]{m.name}[/bold] ({m.architecture}, {m.n_layers} layers, {m.dtype})")
    out.print(f"prompt: {show(flow.prompt)}  ({len(flow.token_ids)} tokens, {len(flow.sources) - 1} sources + bias)")
    out.print(f"position {p} {show(flow.tokens[p])}: prediction [bold]{show(flow.logits[0].text)}[/bold]"
              + (f"  confidence {flow.top_k[0].prob:.4f}" if flow.top_k else ""))

    shares = {k: flow.shares(k)[:, p] for k in ("total", "attention", "mlp")}  # [layer, source]
    keep = _reached(flow)
    table = Table(title=f"sources of the residual at position {p}: share of the total (attention / MLP share)",
                  title_justify="left")
    table.add_column("layer", justify="right")
    top = min(top, len(keep))  # no empty columns (and no endless loop for a huge --top-k)
    for i in range(top):
        table.add_column(f"#{i + 1}")
    for layer in range(shares["total"].shape[0]):
        order = sorted(keep, key=lambda s: -shares["total"][layer, s])[:top]
        cells = [f"{show(flow.sources[s])} {100 * shares['total'][layer, s]:.0f}% "
                 f"[dim]({100 * shares['attention'][layer, s]:.0f} / {100 * shares['mlp'][layer, s]:.0f})[/dim]"
                 for s in order]
        table.add_row(str(layer), *cells)
    out.print(table)

    attr = Table(title=f"direct logit attribution at position {p} (sums to the logit)", title_justify="left")
    attr.add_column("source")
    for a in flow.logits:
        attr.add_column(show(a.text), justify="right")
    first = flow.logits[0].contributions
    order = sorted(keep, key=lambda s: -abs(first[s]))
    for s in order[:MAX_ATTRIBUTION_ROWS]:
        attr.add_row(show(flow.sources[s]), *(f"{a.contributions[s]:+.4f}" for a in flow.logits))
    if len(order) > MAX_ATTRIBUTION_ROWS:
        attr.add_row(f"[dim]({len(order) - MAX_ATTRIBUTION_ROWS} more)[/dim]", *("" for _ in flow.logits))
    attr.add_row("[bold]sum[/bold]", *(f"{a.total:+.4f}" for a in flow.logits))
    attr.add_row("[bold]logit[/bold]", *(f"{a.logit:+.4f}" for a in flow.logits))
    out.print(attr)
    out.print(f"max relative error, sum over sources vs the true residual: {flow.max_error:.2e}")
    if path is not None:
        out.print(f"trace with flow records written to {path}")


def flow_json(flow: Flow, path: Path | None) -> dict:
    """The flow at its position: per layer norms and shares over the sources reaching it, and the attribution."""
    p, keep = flow.position, _reached(flow)
    shares = {k: flow.shares(k)[:, p] for k in ("total", "attention", "mlp")}

    def listed(a: np.ndarray) -> list[float]:
        return [float(x) for x in a[keep]]

    return {
        "model": flow.model.name, "prompt": flow.prompt, "tokens": flow.tokens, "position": p,
        "sources": [flow.sources[s] for s in keep],
        "groups": [list(flow.groups[s]) for s in keep[:-1]],
        "max_error": flow.max_error, "error": [float(e) for e in flow.error],
        "layers": [{"layer": layer,
                    "attention": listed(flow.attention[layer, p]), "mlp": listed(flow.mlp[layer, p]),
                    "total": listed(flow.total[layer, p]),
                    "attention_share": listed(shares["attention"][layer]), "mlp_share": listed(shares["mlp"][layer]),
                    "total_share": listed(shares["total"][layer])}
                   for layer in range(flow.total.shape[0])],
        "attribution": [{"token_id": a.token_id, "text": a.text, "logit": a.logit, "sum": a.total,
                         "contributions": listed(a.contributions)} for a in flow.logits],
        "out": None if path is None else str(path),
    }
