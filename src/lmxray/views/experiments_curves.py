"""A finished sweep's per-layer curves per category as plain data: what its divergence-by-category figure draws."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lmxray.analysis.bootstrap import BAND_LEVEL, curve_bands
from lmxray.errors import LmxrayError
from lmxray.views.base import View


@dataclass
class SweepCurvesView(View):
    """A ``categories`` row per category, in dataset order: category, n_pairs, js_mean with its bootstrap band
    js_lo / js_hi (analysis.bootstrap.curve_bands), and first_share (null for a layer the bos_profile lacks)."""

    run: str  # the run folder
    layers: int
    level: float  # the bands' confidence level
    categories: list[dict]


def sweep_curves_view(folder: Path | str) -> SweepCurvesView:
    """The curves of the finished sweep in ``folder``, from its layers and bos_profile tables."""
    layers = _read(folder, "layers", ["id", "category", "layer", "js"])
    ids = list(dict.fromkeys(layers["id"]))
    n_layers = len(layers["id"]) // max(1, len(ids))
    first_row = {pid: i * n_layers for i, pid in enumerate(ids)}
    categories = [layers["category"][first_row[pid]] for pid in ids]
    js = [layers["js"][first_row[pid]:first_row[pid] + n_layers] for pid in ids]
    profile = _read(folder, "bos_profile", ["category", "layer", "bos_share"])
    shares: dict[str, list] = {}
    for category, layer, share in zip(profile["category"], profile["layer"], profile["bos_share"], strict=True):
        shares.setdefault(category, [None] * n_layers)[layer] = share
    curves = [{"category": c, "n_pairs": categories.count(c), "js_mean": mean, "js_lo": lo, "js_hi": hi,
               "first_share": shares.get(c, [None] * n_layers)}
              for c, (mean, lo, hi) in curve_bands(categories, js).items()] if ids else []
    return SweepCurvesView(run=str(folder), layers=n_layers, level=BAND_LEVEL, categories=curves)


def _read(folder: Path | str, table: str, columns: list[str]) -> dict[str, list]:
    """The ``columns`` of the run folder's ``table``.parquet; a missing or unreadable one is a one-line error."""
    import pyarrow.parquet as pq

    path = Path(folder) / f"{table}.parquet"
    try:
        return pq.read_table(path, columns=columns).to_pydict()
    except (OSError, ValueError) as e:
        raise LmxrayError(f"cannot read {path} ({e})", "rerun the same `lmxray sweep` command to rewrite it") from None
