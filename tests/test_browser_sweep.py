"""A sweep pair traced from the experiments page in a real browser (fixtures and helpers of test_browser.py): the page
shows the prompts the run recorded, and its trace-and-compare button opens the comparison of the two prompts, whose
per-layer divergence is the sweep's own row for that pair."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from test_browser import WAIT_MS, browser, close, page, server, shown_rows, wait_ready  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def test_a_clicked_pair_is_traced_and_compared_on_the_runs_model(page, server, capsys):  # noqa: F811
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
