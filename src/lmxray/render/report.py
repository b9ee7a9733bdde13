"""The self-contained HTML report (and the Jupyter summary it starts with).

One file that opens offline: styles inline, figures embedded as base64 data
URIs, no link, no URL. Text from the prompt and tokens is escaped, and "://"
in it is written as "&#58;//", so even a prompt that quotes a web address
renders as text without the file containing a URL. When the explorer bundle is
built, the file also carries it inline with the run's view JSON (the explorer's
graph, maps, lens and convergence views, interactive); the static sections stay
below it, and without the bundle the report is static only.
"""

from __future__ import annotations

import base64
import html
import importlib.resources
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from lmxray.analysis.convergence import Summary
from lmxray.atomic import atomic_output
from lmxray.errors import LmxrayError
from lmxray.trace.types import Trace
from lmxray.views import (HeadScoresView, LensView, TraceView, head_maps_view, head_scores_view, lens_view, map_view,
                          trace_view)
from lmxray.views.base import finite

MAX_SUMMARY_ROWS = 12  # convergence rows in the Jupyter summary; the report lists them all
TOP_HEADS = 5  # heads listed per pattern in the head-score section
_MIME = {"png": "image/png", "svg": "image/svg+xml"}
# The explorer bundle `make web` builds (a path, not an import: render/ sits below server/)
BUNDLE = Path(__file__).resolve().parent.parent / "server" / "static"
EMBED_MAX_FLOATS = 4_000_000  # maps (layers [x heads] x tokens^2) embedded up to this many floats each kind
EMBED_MAX_LENS = 512  # lens views embedded for at most this many positions (the prediction's first)
SVG_NS = "http://www.w3.org/2000/svg"  # the bundle's SVG export names it; inlined as "http\x3a//..." (same string)


def text(value) -> str:
    """Escape any text for HTML; '://' is broken up so no URL appears in the file."""
    return html.escape(str(value)).replace("://", "&#58;//")


def token(value: str) -> str:
    """A token's text, quoted with whitespace escaped, as the console tables show it."""
    return f"<code>{text(repr(value))}</code>"


@dataclass
class Figure:
    """An encoded figure for the report: its bytes, format (png or svg) and caption."""

    data: bytes
    fmt: str
    caption: str


@dataclass
class Section:
    """A titled block of the report: ready HTML, or a note saying why the data is missing."""

    title: str
    body: str = ""
    note: str = ""
    figures: list[Figure] = field(default_factory=list)


def summary_html(view: TraceView, max_rows: int | None = MAX_SUMMARY_ROWS) -> str:
    """The trace view: model, prompt, prediction, top-k and (when it has them) the convergence table and metrics."""
    m, conv = view.model, view.convergence
    parts = [
        f"<p><b>{text(m['name'])}</b> ({text(m['architecture'])}, {m['n_layers']} layers &times; {m['n_heads']} heads, "
        f"{text(m['dtype'])})<br>prompt: {token(view.prompt)} ({len(view.tokens)} tokens)<br>"
        f"prediction at position {view.position}: <b>{token(view.predicted_text)}</b>, "
        f"confidence {view.confidence:.4f}</p>",
        _table("top-k candidates", ("rank", "token", "id", "prob"),
               [(i, token(s["text"]), s["token_id"], f"{s['prob']:.4f}") for i, s in enumerate(view.top_k, 1)]),
    ]
    if conv is not None:
        rows = conv.rows
        shown = rows if max_rows is None else rows[:max_rows]
        parts.append(_table(
            f"convergence at position {conv.position}: attention mass summed over "
            f"{conv.n_layers} layers &times; {conv.n_heads} heads",
            ("pos", "token", "mass", "share", "status"),
            [(r.position, token(r.token), f"{r.mass:.2f}", f"{100 * r.share:.1f}%",
              f'<span class="{r.status}">{r.status}</span>') for r in shown]))
        if len(rows) > len(shown):
            parts.append(f"<p class=note>{len(rows) - len(shown)} more positions in the full report</p>")
        parts.append(_table("summary", ("metric", "value"), _summary_rows(conv.summary)))
    return "\n".join(parts)


def _summary_rows(s: Summary) -> list[tuple]:
    return [
        ("first-position sink mass", f"{s.sink_mass:.2f}"),
        ("active positions", f"{s.active_positions} / {s.n_positions}"),
        ("unexpected positions &gt; 0.1", s.unexpected_positions),
        ("unexpected mass", f"{s.unexpected_mass:.2f}"),
        ("expected share", "-" if s.expected_share is None else f"{100 * s.expected_share:.1f}%"),
        ("attention entropy (bits)", f"{s.entropy_bits:.3f}"),
        ("total mass (layers &times; heads)", f"{s.total_mass:.2f}"),
        ("confidence", f"{s.confidence:.4f}"),
    ]


def _table(caption: str, header: tuple, rows: list[tuple]) -> str:
    """An HTML table; cells are pre-escaped HTML or numbers."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><caption>{caption}</caption><tr>{head}</tr>{body}</table>"


def lens_section(lens: LensView) -> Section:
    """The logit lens view at the prediction position: per layer top-k, target prob and rank."""
    target = token(lens.target_text) if lens.target_text is not None else f"#{lens.target_id}"
    first = "never" if lens.first_top1 is None else f"layer {lens.first_top1}"
    settled = "never" if lens.settled is None else f"layer {lens.settled}"
    rank_note = "" if lens.rank_exact else " (ranks below the stored top-k are unknown: shown as &gt;k)"
    rows = [(r.layer, " ".join(f"{_lens_token(t)} {t.prob:.3f}" for t in r.top), f"{r.target_prob:.4f}",
             f"&gt;{len(r.top)}" if r.target_rank is None else r.target_rank,
             "top-1" if r.target_rank == 1 else "") for r in lens.rows]
    body = (f"<p>final prediction at position {lens.position} ({token(lens.token)}): {target}; first top-1 at "
            f"{first}; top-1 from {settled} on{rank_note}</p>"
            + _table("logit lens (final norm + unembedding on each layer's residual)",
                     ("layer", "top-k (prob)", "prediction prob", "prediction rank", ""), rows))
    return Section("Logit lens", body)


def _lens_token(t) -> str:
    return token(t.text) if t.text is not None else f"<code>#{t.token_id}</code>"


def head_scores_section(view: HeadScoresView) -> Section:
    """Top heads per shown pattern (score, baseline mean, z) and label counts per layer, from the head-score view."""
    has_base = view.baseline is not None
    parts = [f"<p>{text(view.model)}: scores are mean attention weights on each pattern's target key over the "
             f"probe set" + (f"; baseline: {text(view.baseline)} (mean and z-score per head)" if has_base else "")
             + "</p>"]
    header = ("pattern", "layer", "head", "score", "skip k") + (("baseline", "z") if has_base else ())
    rows = []
    for pattern in view.shown:
        for h in view.top[pattern]:
            row = (pattern, h["layer"], h["head"], f"{h['score']:.3f}", h["skip_k"] if pattern == "position_skip" else "")
            if has_base:
                row += (f"{h['baseline']:.3f}", f"{h['z']:.1f}")
            rows.append(row)
    parts.append(_table(f"top {TOP_HEADS} heads per pattern", header, rows))
    names = (*view.shown, "mixed")
    parts.append(_table("head labels per layer (dominant pattern, or mixed)", ("layer", *names),
                        [(layer, *(c[n] for n in names)) for layer, c in view.label_counts.items()]))
    return Section("Head scores", "\n".join(parts))


def flow_section(flow, figure_format: str) -> Section:
    """Information flow: the stacked per-source bars at the flow's position and the attribution, sink apart."""
    from lmxray.render.figures import figure_bytes
    from lmxray.render.flow_bars import flow_bars_figure
    from lmxray.views.flow import SINK_NOTE, flow_view

    view = flow_view(flow)
    columns = [(a.text, a.logit, a) for a in view.attribution]
    if view.contrast is not None:
        c = view.contrast
        columns.append((f"{c.a['text']} - {c.b['text']}", c.difference, c))
    parts = {name: [getattr(part, key) for _, _, part in columns]
             for name, key in (("content sources", "content"), (f"first {view.sources[0]!r} (sink)", "sink"),
                               ("&lt;bias&gt;", "bias"))}
    rows = [(text(name), *(f"{x:+.4f}" for x in values)) for name, values in parts.items()]
    rows.append(("logit" + (" (difference for A - B)" if view.contrast is not None else ""),
                 *(f"{logit:+.4f}" for _, logit, _ in columns)))
    body = (f"<p>position {view.position} ({token(view.tokens[view.position])}); {text(SINK_NOTE)}; measured error "
            f"of the split {view.max_error:.1e}</p>"
            + _table("direct logit attribution, in parts", ("part", *(token(name) for name, _, _ in columns)), rows))
    fig = Figure(figure_bytes(flow_bars_figure(flow), figure_format), figure_format,
                 "per-source contributions per layer at the flow's position, and the logit attribution")
    return Section("Information flow", body, figures=[fig])


def explorer_data(trace: Trace, decode=None) -> dict:
    """One run's view JSON as the explorer's embedded API answers it (web/src/api/embedded.ts): the trace view, the
    lens at each position that has one, every layer's head-summed map and, when small enough, per-head maps."""
    notes = []
    positions = [trace.position] + [p for p in range(len(trace.tokens)) if p != trace.position]
    lens = {}
    for p in positions[:EMBED_MAX_LENS]:
        try:
            lens[str(p)] = lens_view(trace, p, decode).to_dict()
        except LmxrayError:  # no lens at p: the page says so there
            continue
    if len(positions) > EMBED_MAX_LENS:
        notes.append(f"logit lens embedded for {EMBED_MAX_LENS} of {len(positions)} positions")
    maps = {}
    if trace.attention is not None and trace.attention.size <= EMBED_MAX_FLOATS:
        maps = {str(layer): map_view(trace, layer).to_dict() for layer in trace.layers}
    elif trace.attention is not None:
        notes.append(f"maps left out of this file ({trace.attention.size:,} weights > {EMBED_MAX_FLOATS:,}): "
                     "open the trace with lmxray serve")
    head_maps = {}
    if trace.attention_heads is not None:
        if trace.attention_heads.size <= EMBED_MAX_FLOATS:
            head_maps = {str(layer): head_maps_view(trace, layer).to_dict() for layer in trace.layers}
        else:
            notes.append(f"per-head maps left out of this file ({trace.attention_heads.size:,} weights > "
                          f"{EMBED_MAX_FLOATS:,}): open the trace with lmxray serve")
    return {"format": "lmxray.explorer/1",
            "run": {"run_id": "embedded", "model_name": trace.model.name, "prompt": trace.prompt},
            "summary": trace_view(trace, strict=False).to_dict(), "lens": lens, "maps": maps, "head_maps": head_maps,
            "notes": notes}


def _bundle() -> tuple[str, str] | None:
    """The built explorer's script and stylesheet, inlinable without a URL, or None when it is not built."""
    index = BUNDLE / "index.html"
    if not index.is_file():
        return None
    page = index.read_text(encoding="utf-8")
    names = re.findall(r'(?:src|href)="\./(assets/[^"]+\.(?:js|css))"', page)
    found = {Path(n).suffix: (BUNDLE / n).read_text(encoding="utf-8") for n in names if (BUNDLE / n).is_file()}
    if set(found) != {".js", ".css"}:
        return None
    script = found[".js"].replace(SVG_NS, SVG_NS.replace(":", "\\x3a"))
    if "://" in script or "</script" in script.lower() or "url(" in found[".css"] or "@import" in found[".css"]:
        return None  # a reference this file must not carry: the static report only
    return script, found[".css"]


def _json_in_html(data: dict) -> str:
    """``data`` as JSON that is safe inside a script element and carries no URL ("<" and "/" escaped)."""
    text = json.dumps(finite(data), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace("://", ":\\/\\/")


def explorer_block(data: dict) -> str | None:
    """The explorer inline with ``data`` (``explorer_data``): its stylesheet, the data, its script; None when the
    bundle is not built."""
    bundle = _bundle()
    if bundle is None:
        return None
    script, style = bundle
    return (f"<style>\n{style}</style>\n<div id=app></div>\n"
            f"<script type=\"application/json\" id=\"lmxray-data\">{_json_in_html(data)}</script>\n"
            f"<script type=\"module\">\n{script}</script>")


def report_html(trace: Trace, sections: list[Section], explorer: str | None = None) -> str:
    """The whole report: the summary header, then each section with its figures embedded."""
    style = importlib.resources.files("lmxray.render").joinpath("report.css").read_text(encoding="utf-8")
    body = []
    for s in sections:
        block = [f"<h2>{text(s.title)}</h2>"]
        if s.note:
            block.append(f"<p class=note>{text(s.note)}</p>")
        block.append(s.body)
        for fig in s.figures:
            data = base64.b64encode(fig.data).decode("ascii")
            block.append(f'<figure><img alt="{text(fig.caption)}" src="data:{_MIME[fig.fmt]};base64,{data}">'
                         f"<figcaption>{text(fig.caption)}</figcaption></figure>")
        body.append("<section>" + "\n".join(block) + "</section>")
    title = f"lmxray report: {trace.prompt[:60]}"
    created = f", trace created {text(trace.created)}" if trace.created else ""
    interactive = "" if explorer is None else f"{explorer}\n<p class=note>Below: the same run as a static report.</p>\n"
    return (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width, initial-scale=1'><title>{text(title)}</title>"
            f"<style>\n{style}</style></head><body>\n{interactive}<h1>lmxray report</h1>\n"
            + "\n".join(body)
            + f"\n<footer>lmxray {text(trace.version or _version())}{created}</footer>\n</body></html>\n")


def _version() -> str:
    import lmxray

    return lmxray.__version__


def write_report(html_text: str, path) -> None:
    """Write the report atomically (temp file in the same directory, then rename)."""
    path = Path(path)
    with atomic_output(path) as f:
        f.write(html_text)


def trace_summary_html(trace: Trace) -> str:
    """The Jupyter summary of a trace: the report's first section, convergence rows capped."""
    view = trace_view(trace, strict=False)
    extra = f"<p class=note>{text(view.note)}</p>" if view.note else ""
    return f"<div><b>lmxray trace</b>{summary_html(view)}{extra}</div>"


def build_report(trace: Trace, *, decode=None, map_layers: list[int] | None = None,
                 map_heads: list[int] | None = None, twin: Trace | None = None, head_scores=None,
                 figure_format: str = "png", flow_result=None, interactive: bool = True) -> str:
    """The report of ``trace``: every section its data allows; a missing part becomes a note naming the capture option.

    ``interactive``: put the explorer (bundle and the run's view JSON) above the static sections when it is built.
    ``decode`` turns lens token ids into text (a model's ``token_text``); ``twin``
    (the random-init twin's trace of the same prompt) goes beside the map grid;
    ``head_scores`` (a ``HeadScores``) adds the head-score section; ``flow_result`` (a ``Flow``, e.g.
    from ``read_flow``) adds the per-source stacked bars and the logit attribution.
    """
    from lmxray.render.attention_maps import (
        PER_HEAD_FIX,
        attention_map_grid,
        select_maps,
    )
    from lmxray.render.figures import figure_bytes
    from lmxray.render.flow_figure import flow_figure

    if figure_format not in _MIME:
        raise LmxrayError(f"unknown figure format {figure_format!r}", "use png or svg")
    view = trace_view(trace, strict=False)
    rows, note = (None if view.convergence is None else view.convergence.rows), view.note or ""
    sections = [Section("Prediction and convergence", summary_html(view, max_rows=None), note=note)]

    flow = Section("Attention flow")
    if rows is None:
        flow.note = note
    else:
        try:
            fig = flow_figure(trace, rows)
            flow.figures.append(Figure(figure_bytes(fig, figure_format), figure_format,
                                       "attention flow graph and convergence bar of the prediction position"))
        except LmxrayError as e:
            flow.note = f"no flow figure: {e}"
    sections.append(flow)
    if flow_result is not None:
        sections.append(flow_section(flow_result, figure_format))

    grid = Section("Attention maps per head")
    if trace.attention_heads is None and map_layers is None and map_heads is None:
        grid.note = f"no per-head attention in this trace: {PER_HEAD_FIX}"
    else:
        selection = select_maps(trace, map_layers, map_heads)  # an explicit bad choice is the user's error
        fig = attention_map_grid(trace, selection, twin=twin)
        caption = "per-head attention maps" + ("" if twin is None else ", trained (left) and random init (right)")
        grid.figures.append(Figure(figure_bytes(fig, figure_format), figure_format, caption))
    sections.append(grid)

    try:
        sections.append(lens_section(lens_view(trace, trace.position, decode)))
    except LmxrayError as e:
        sections.append(Section("Logit lens", note=f"no logit lens: {e}"))
    if head_scores is not None:
        sections.append(head_scores_section(head_scores_view(head_scores, top=TOP_HEADS)))
    return report_html(trace, sections, explorer_block(explorer_data(trace, decode)) if interactive else None)
