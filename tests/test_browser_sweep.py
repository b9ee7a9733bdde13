"""Sweeps on the experiments page in a real browser (fixtures in browser_fixtures.py): a sweep run's summary and a pair's
rows against the library's; and a pair traced from the page: it shows the prompts the run recorded, and its
trace-and-compare button opens the comparison of the two prompts, whose per-layer divergence is the sweep's own row
for that pair."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from browser_helpers import WAIT_MS, close, shown_rows, wait_ready

pytest_plugins = ["browser_fixtures"]
pytestmark = pytest.mark.browser


def test_a_sweep_run_shows_the_librarys_summary_and_a_pairs_rows(page, server, capsys):
    import pyarrow.parquet as pq
    from cli_helpers import run as run_cli

    from lmxray.views import sweep_view

    code, _, err = run_cli(capsys, "sweep", "--model", server.model, "--out", server.runs / "sw", "--limit", "4")
    assert code == 0, err
    page.goto(f"{server.url}?view=experiments&experiment=sw")
    wait_ready(page)
    page.wait_for_selector("canvas[aria-label='sweep curves']")
    ref = sweep_view(server.runs / "sw")
    rows = shown_rows(page, ".experiments .summary")
    expected = ref.categories + ref.length_groups
    assert [r[0] for r in rows] == [c["category"] for c in expected]
    for cells, c in zip(rows, expected, strict=True):
        assert cells[1] == str(c["n_pairs"]) and close(cells[5], c["mean_js"]), f"{cells} vs {c}"
        assert close(cells[2].split()[0], c["peak_layer"]), f"peak layer {cells[2]} vs {c['peak_layer']}"
    pair = pq.read_table(server.runs / "sw" / "pairs.parquet").column("id")[1].as_py()
    page.click(f".experiments .pairs tbody tr:nth-child(2)")
    page.wait_for_url(re.compile(f"pair={pair}"))
    wait_ready(page)
    layers = [r for r in pq.read_table(server.runs / "sw" / "layers.parquet").to_pylist() if r["id"] == pair]
    shown = shown_rows(page, ".experiments .pair")
    assert [int(r[0]) for r in shown] == [r["layer"] for r in layers]
    for cells, r in zip(shown, layers, strict=True):
        assert close(cells[1], r["js"]) and close(cells[2], r["bos_share_intended"]), f"{cells} vs {r}"
    page.reload()  # the permalink reopens the run and the pair
    wait_ready(page)
    assert shown_rows(page, ".experiments .pair") == shown


def test_a_clicked_pair_is_traced_and_compared_on_the_runs_model(page, server, capsys):
    import pyarrow.parquet as pq
    from cli_helpers import run as run_cli

    # aligned at the end, as compare can align: the sweep's JS and compare's are then the same computation
    code, _, err = run_cli(capsys, "sweep", "--model", server.model, "--out", server.runs / "swp", "--limit", "3",
                           "--align", "end")
    assert code == 0, err
    pair = pq.read_table(server.runs / "swp" / "pairs.parquet").to_pylist()[0]  # lengths differ: JS well above noise
    page.goto(f"{server.url}?view=experiments&experiment=swp&pair={pair['id']}")
    wait_ready(page)
    prompts = dict((r[0], r[1]) for r in shown_rows(page, ".experiments .pair-prompts"))
    assert (prompts["intended"], prompts["contradictory"]) == (pair["intended"], pair["contradictory"])
    page.click("button[name=trace-pair]")
    page.wait_for_url(re.compile(r"view=compare"), timeout=WAIT_MS)
    wait_ready(page)
    page.wait_for_selector("canvas[aria-label='per-layer divergence']")
    state = {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}
    assert (state["model"], state["align"], state["experiment"], state["pair"]) == (server.model, "end", "swp", pair["id"])
    layers = [r for r in pq.read_table(server.runs / "swp" / "layers.parquet").to_pylist() if r["id"] == pair["id"]]
    shown = shown_rows(page, ".compare .layers")
    assert [c[0] for c in shown] == [f"L{r['layer']}" for r in layers]
    for cells, r in zip(shown, layers, strict=True):
        assert close(cells[1], r["js"]), f"layer {r['layer']}: compare shows JS {cells[1]}, the sweep stored {r['js']}"
        assert close(cells[2], r["bos_share_intended"]), f"layer {r['layer']}: {cells[2]} vs {r['bos_share_intended']}"
    heading = page.inner_text(".run-heading")
    assert pair["intended"] in heading, heading  # side A is the intended prompt
    page.reload()  # the permalink reopens the comparison without tracing again
    wait_ready(page)
    assert shown_rows(page, ".compare .layers") == shown
    page.click("nav.tabs a:text('experiments')")  # and the experiments tab leads back to the pair
    wait_ready(page)
    assert dict((r[0], r[1]) for r in shown_rows(page, ".experiments .pair-prompts"))["intended"] == pair["intended"]
