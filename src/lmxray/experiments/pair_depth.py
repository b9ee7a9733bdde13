"""One pair's depth profile from a finished sweep run folder: its per-layer rows of the layers table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmxray.errors import LmxrayError
from lmxray.experiments.store import read_summary


@dataclass
class PairDepth:
    """Per-layer JS and first-position shares of one pair, with its pair-table row."""

    id: str
    category: str
    model: str
    align: str
    threshold: float
    js: np.ndarray  # [layer]
    bos_intended: np.ndarray  # [layer]
    bos_contradictory: np.ndarray  # [layer]
    pair: dict  # its row of pairs.parquet (first/peak layer, top-1 tokens, token counts, ...)


def read_pair_depth(folder: str | Path, pair_id: str) -> PairDepth:
    """The rows of ``pair_id`` in a sweep run folder's layers and pairs tables, layers in order."""
    import pyarrow.parquet as pq

    summary = read_summary(folder, "sweep")  # a folder of another command, or an unfinished run: one line
    tables = {}
    for name in ("layers", "pairs"):
        path = Path(folder) / f"{name}.parquet"
        try:
            tables[name] = pq.read_table(path).to_pydict()
        except (OSError, ValueError) as e:
            raise LmxrayError(f"cannot read {path} ({e})", "rerun the same `lmxray sweep` command to rewrite it") from None
    layers, pairs = tables["layers"], tables["pairs"]
    if pair_id not in pairs["id"]:
        known = ", ".join(pairs["id"][:5]) + (", ..." if len(pairs["id"]) > 5 else "")
        raise LmxrayError(f"--pair {pair_id!r} is not in {folder} ({len(pairs['id'])} pairs: {known})",
                          "pass an id from the run's pairs.csv")
    rows = sorted((i for i, pid in enumerate(layers["id"]) if pid == pair_id), key=lambda i: layers["layer"][i])
    column = lambda name: np.array([layers[name][i] for i in rows], dtype=np.float64)
    row = pairs["id"].index(pair_id)
    return PairDepth(pair_id, layers["category"][rows[0]], summary["model"], summary["align"], summary["threshold"],
                     column("js"), column("bos_share_intended"), column("bos_share_contradictory"),
                     {name: values[row] for name, values in pairs.items()})
