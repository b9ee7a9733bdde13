"""lmxray models: built-in aliases, adapted architectures, the cache; with --support, the support matrix."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from lmxray.cli.app import app, err, out
from lmxray.render import console as render_text


@app.command()
def models(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    support: bool = typer.Option(False, "--support", help="Check every causal-LM model type of the installed "
                                 "transformers on a tiny random model: does trace match eager attention, does flow "
                                 "reconstruct (about a minute)."),
    types: Optional[str] = typer.Option(None, "--type", help="With --support: only these model types, "
                                        "comma-separated, e.g. llama,mixtral."),
    as_markdown: bool = typer.Option(False, "--markdown", help="With --support: print the counts and the table as "
                                     "docs/architectures.md shows them."),
):
    """List built-in model aliases, supported architectures and the cache location (--support: the matrix)."""
    if (types is not None or as_markdown) and not support:
        from lmxray.errors import LmxrayError

        flag = "--type" if types is not None else "--markdown"
        raise LmxrayError(f"{flag} goes with the support matrix", f"add --support, or drop {flag}")
    if support:
        _print_support(as_json, as_markdown, None if types is None else [t.strip() for t in types.split(",") if t.strip()])
        return
    from lmxray.adapters import ADAPTERS
    from lmxray.models.builtin import BUILTINS, is_installed
    from lmxray.models.gguf_cache import cache_dir

    data = render_text.models_data(BUILTINS, is_installed, ADAPTERS, cache_dir())
    if as_json:
        out.print_json(data=data)
    else:
        render_text.print_models(out, data)


def _print_support(as_json: bool, as_markdown: bool, types: list[str] | None) -> None:
    """Compute the matrix (a progress count on stderr) and print it as a table, JSON or Markdown."""
    from lmxray.models.support import markdown, summary, support_matrix

    done = []

    def progress(row) -> None:
        done.append(row)
        err.print(f"\r{len(done)} model types checked ({row.model_type})", end="", markup=False, highlight=False)

    rows = support_matrix(types, progress=progress)
    err.print("", markup=False)
    counts = summary(rows)
    if as_json:
        out.print_json(data={"summary": counts, "rows": [r.to_dict() for r in rows]})
        return
    if as_markdown:
        out.print(markdown(rows), end="", markup=False, highlight=False, soft_wrap=True)
        return
    table = Table(title="support matrix (tiny random models, fp32)", title_justify="left")
    for name in ("model type", "status", "spec", "trace", "flow", "reason"):
        table.add_column(name, overflow="fold")
    mark = {True: "exact", False: "no", None: "-"}
    for r in rows:
        table.add_row(r.model_type, r.status, r.spec or "-", mark[r.trace], mark[r.flow], r.reason or "")
    out.print(table)
    out.print(f"trace exact on {counts['trace_exact']} of {counts['with_attention']} decoder-only types with attention "
              f"({counts['trace_share']:.0%}); flow exact on {counts['flow_exact']}; "
              f"{counts['causal_lm_types'] - counts['decoder_only_types']} out of scope", markup=False, highlight=False)
