"""`lmxray heads`: score every head for the five standard patterns against a random-init (or other) baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lmxray.cli.app import DEFAULT_MODEL, DeviceOpt, DtypeOpt, InitOpt, ModelOpt, app, check_seed, load_model, out
from lmxray.cli.files import check_output, check_output_suffix, write_json
from lmxray.cli.plot import LAYERS_HELP, parse_indices
from lmxray.errors import LmxrayError

RANDOM_BASELINE = "random"
NO_BASELINE = "none"


@app.command()
def heads(
    more_checkpoints: Optional[list[str]] = typer.Argument(
        None, metavar="[CHECKPOINT]...", show_default=False,
        help="Further checkpoint SPECs after --checkpoints A, as in `--checkpoints A B C`."),
    model: ModelOpt = DEFAULT_MODEL,
    baseline: str = typer.Option(RANDOM_BASELINE, "--baseline", help="'random' (random-init twins), 'none', or another checkpoint's SPEC."),
    baseline_seeds: int = typer.Option(3, "--baseline-seeds", help="Random-init twins to pool (seeds SEED+1..SEED+N)."),
    checkpoints: Optional[str] = typer.Option(None, "--checkpoints", help="Checkpoint SPECs of one model (`--checkpoints A B C` or A,B,C): show how the top scores evolve."),
    patterns: Optional[str] = typer.Option(None, "--patterns", help="Patterns to show, comma-separated (default: all five)."),
    layers: Optional[str] = typer.Option(None, "--layers", help=LAYERS_HELP + " Default: all."),
    head_list: Optional[str] = typer.Option(None, "--heads", help="Heads to list, comma-separated (default: all)."),
    top: int = typer.Option(5, "--top", help="Heads listed per pattern."),
    repeats: int = typer.Option(2, "--repeats", help="Repeated random sequences in the probe set."),
    figure: Optional[Path] = typer.Option(None, "--figure", help="Write the score figure here (.png or .svg)."),
    out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the scores as JSON here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    init: InitOpt = "pretrained",
    seed: Annotated[int, typer.Option("--seed", help="Seed for --init random; twins use SEED+1.. .")] = 0,
):
    """Score heads on a probe set (natural prompts + repeated random tokens): previous-token, first-token sink,
    self, induction, position-skip; label each head and compare with a baseline (z-scores)."""
    from lmxray.analysis.heads import PATTERNS
    from lmxray.probes.heads import (check_probe_memory, checkpoint_models, head_scores_vs_baseline,
                                     model_head_scores, probe_set, random_twins)
    from lmxray.render.figures import figure_format
    from lmxray.render.probe_tables import print_head_scores
    from lmxray.views import head_scores_view

    if more_checkpoints and checkpoints is None:
        raise LmxrayError(f"unexpected argument(s) {' '.join(more_checkpoints)}",
                          "`lmxray heads` takes no prompt; list checkpoints after --checkpoints")
    specs = None if checkpoints is None else _checkpoint_specs(",".join([checkpoints, *(more_checkpoints or [])]))
    chosen = _patterns(patterns, PATTERNS)
    wanted_layers, wanted_heads = parse_indices(layers, "--layers"), parse_indices(head_list, "--heads")
    if top < 1:
        raise LmxrayError(f"--top must be at least 1, got {top}", "pass e.g. --top 5")
    if baseline == RANDOM_BASELINE and baseline_seeds < 1:
        raise LmxrayError(f"--baseline-seeds must be at least 1, got {baseline_seeds}", "pass e.g. --baseline-seeds 3")
    check_seed(seed, baseline_seeds if baseline == RANDOM_BASELINE else 0)
    if out_path is not None:
        check_output_suffix(out_path, "JSON", (".json",))
    for path in (figure, out_path):
        if path is not None:
            check_output(path)
    if figure is not None:
        figure_format(figure)
    loaded = load_model(model, device, dtype, init, seed)
    heads_shown = _check_heads(wanted_heads, loaded.info.n_heads)
    check_probe_memory(loaded, repeats, len(wanted_layers or range(loaded.info.n_layers)))
    probes = probe_set(loaded, n_repeats=repeats)
    if baseline == NO_BASELINE:
        scores = model_head_scores(loaded, probes, wanted_layers)
    else:
        if baseline == RANDOM_BASELINE:
            twins = random_twins(loaded, range(seed + 1, seed + 1 + baseline_seeds))
            name = f"random init ({baseline_seeds} seeds)"
        else:
            twins, name = checkpoint_models([baseline], device, dtype), baseline
        scores, _ = head_scores_vs_baseline(loaded, twins, name, probes, wanted_layers)
    evolution = None
    if specs is not None:
        from lmxray.probes.evolution import checkpoint_evolution

        evolution = checkpoint_evolution(scores, specs, chosen, probes, wanted_layers, device, dtype)
    view = head_scores_view(scores, chosen, top, heads_shown, probes, evolution)
    data = view.to_dict()
    if out_path is not None:
        write_json(out_path, data)
    if figure is not None:
        from lmxray.render.figures import save_figure
        from lmxray.render.heads_figure import head_scores_figure

        save_figure(head_scores_figure(scores, chosen), figure)
    if as_json:
        out.print_json(data=data)
        return
    print_head_scores(out, view)
    if view.checkpoints is not None:
        from lmxray.render.probe_tables import print_checkpoints

        print_checkpoints(out, view.checkpoints)
    for path, what in ((out_path, "scores"), (figure, "figure")):
        if path is not None:
            out.print(f"{what} written to {path}")


def _patterns(text: str | None, known: tuple[str, ...]) -> list[str]:
    if text is None:
        return list(known)
    names = [p.strip().replace("-", "_") for p in text.split(",")]
    if text.strip() and "" in names:
        raise LmxrayError(f"--patterns {text!r} has an empty item", f"write it like --patterns {known[0]},{known[-1]}")
    bad = [p for p in names if p not in known]
    if bad or not names:
        raise LmxrayError(f"unknown pattern '{bad[0] if bad else text}'", f"choose from {', '.join(known)}")
    return names


def _check_heads(heads: list[int] | None, n_heads: int) -> list[int] | None:
    if heads is None:
        return None
    for h in heads:
        if not -n_heads <= h < n_heads:
            raise LmxrayError(f"head {h} is out of range (the model has {n_heads} heads)",
                              f"pass --heads with values in 0..{n_heads - 1} or -1..-{n_heads}")
    return sorted({h % n_heads for h in heads})


def _checkpoint_specs(text: str) -> list[str]:
    """'A,B,C' (the flag's value, with the further CHECKPOINT arguments joined on) -> ['A', 'B', 'C']."""
    specs = [s.strip() for s in text.split(",") if s.strip()]
    if not specs:
        raise LmxrayError("--checkpoints is empty", "write it like --checkpoints step1000,step5000,final")
    return specs
