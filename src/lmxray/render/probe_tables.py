"""Terminal tables of the head-score, lens and logit-trace views (lmxray.views). Nothing here computes."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from lmxray.render.console import show
from lmxray.views import HeadScoresView, LensView, LogitsView

_FLAG_STYLE = {"confident": "green", "uncertain": "yellow", "no idea": "red"}


def print_head_scores(out: Console, view: HeadScoresView) -> None:
    """Top heads per shown pattern (with baseline and z when present) and label counts per layer."""
    base = f" vs baseline {view.baseline}" if view.baseline else ""
    out.print(f"[bold]{view.model}[/bold]: head patterns over {len(view.probes)} probes{base}")
    table = Table(title="top heads per pattern (score = mean attention weight on the pattern's target)",
                  title_justify="left")
    for name, justify in (("pattern", "left"), ("layer.head", "right"), ("score", "right"),
                          ("baseline", "right"), ("z", "right"), ("label", "left")):
        table.add_column(name, justify=justify)
    for pattern in view.shown:
        for i, h in enumerate(view.top[pattern]):
            name = pattern if i == 0 else ""
            score = f"{h['score']:.3f}" + (f" (k={h['skip_k']})" if pattern == "position_skip" else "")
            z = h.get("z")
            style = "bold green" if z is not None and z >= view.z_significant and h["score"] >= view.mixed_threshold \
                else ""
            table.add_row(name, f"{h['layer']}.{h['head']}", f"[{style}]{score}[/{style}]" if style else score,
                          "" if z is None else f"{h['baseline']:.3f}", "" if z is None else f"{z:.1f}", h["label"])
        table.add_section()
    out.print(table)
    labels = (*view.patterns, "mixed")
    per_layer = Table(title=f"labels per layer ('mixed': best score < {view.mixed_threshold})", title_justify="left")
    per_layer.add_column("layer", justify="right")
    for name in labels:
        per_layer.add_column(name.replace("_", " "), justify="right")
    for layer, c in view.label_counts.items():
        per_layer.add_row(str(layer), *(str(c[n]) if c[n] else "." for n in labels))
    out.print(per_layer)
    if view.baseline:
        out.print(f"[dim]green: score >= {view.mixed_threshold} and z >= {view.z_significant} against the "
                  "baseline[/dim]")


def print_lens(out: Console, s: LensView) -> None:
    """The lens view, one row per layer: the prediction's rank and probability, and the lens's top tokens."""
    out.print(f"[bold]{s.model}[/bold]: logit lens of {show(s.prompt)} at position {s.position} ({show(s.token)})")
    out.print(f"final prediction: [bold]{show(s.target_text or str(s.target_id))}[/bold]"
              f"  first top-1 at layer {_layer(s.first_top1)}, top-1 from layer {_layer(s.settled)} on")
    table = Table(title="per layer", title_justify="left")
    for name, justify in (("layer", "right"), ("rank", "right"), ("prob", "right"), ("top-k (prob)", "left")):
        table.add_column(name, justify=justify)
    for r in s.rows:
        rank = str(r.target_rank) if r.target_rank is not None else f">{len(r.top)}"
        tops = "  ".join(f"{show(t.text if t.text is not None else str(t.token_id))} {t.prob:.3f}" for t in r.top)
        table.add_row(str(r.layer), rank, _prob(r.target_prob), tops)
    out.print(table)
    if not s.rank_exact:
        out.print("[dim]this trace has no target_rank: ranks beyond the stored top-k show as >k[/dim]")


def print_logit_trace(out: Console, t: LogitsView) -> None:
    """Per step: prefix, candidates with probability and raw logit, entropy and the confidence flag."""
    mode = "greedy" if t.temperature == 0 else f"sampled at temperature {t.temperature} (seed {t.seed})"
    out.print(f"[bold]{t.model}[/bold]: {len(t.steps)} steps, {mode}")
    for s in t.steps:
        style = _FLAG_STYLE[s.flag]
        table = Table(title=f"step {s.step}: prefix {show(s.prefix)}", title_justify="left")
        for name, justify in (("rank", "right"), ("token", "left"), ("id", "right"), ("prob", "right"),
                              ("logit", "right")):
            table.add_column(name, justify=justify)
        for i, c in enumerate(s.candidates, 1):
            mark = " <" if c.token_id == s.chosen_id else ""
            table.add_row(str(i), show(c.text) + mark, str(c.token_id), f"{c.prob:.4f}", f"{c.logit:.3f}")
        out.print(table)
        chosen = "" if any(c.token_id == s.chosen_id for c in s.candidates) else \
            f"  chosen {show(s.chosen_text)} (prob {s.chosen_prob:.4f}, outside the top-k)"
        out.print(f"entropy {s.entropy:.3f} nats  [{style}]{s.flag}[/{style}]{chosen}")
    out.print(f"generated: {show(t.generated)}" + ("  (stopped at end of sequence)" if t.stopped == "eos" else ""))
    out.print(f"[dim]flags: confident top-1 > {t.thresholds['confident']}, no idea top-1 < "
              f"{t.thresholds['no_idea']}, else uncertain[/dim]")


def _prob(p: float) -> str:
    """Four decimals, or two significant digits for probabilities that would print as 0.0000."""
    return f"{p:.4f}" if p >= 1e-4 or p == 0 else f"{p:.1e}"


def _layer(layer: int | None) -> str:
    return "-" if layer is None else str(layer)


def print_checkpoints(out: Console, evolution: list[dict]) -> None:
    """Per checkpoint: the score of the model's top head per pattern, and that checkpoint's own best head."""
    patterns = list(evolution[0]["scores"])
    table = Table(title="across checkpoints: the model's top head per pattern (checkpoint's best in brackets)",
                  title_justify="left")
    table.add_column("checkpoint")
    for p in patterns:
        h = evolution[0]["scores"][p]
        table.add_column(f"{p.replace('_', ' ')} {h['layer']}.{h['head']}", justify="right")
    for entry in evolution:
        cells = []
        for p in patterns:
            s = entry["scores"][p]
            cells.append(f"{s['score']:.3f} [{s['best']['layer']}.{s['best']['head']} {s['best']['score']:.3f}]")
        table.add_row(entry["checkpoint"], *cells)
    out.print(table)
