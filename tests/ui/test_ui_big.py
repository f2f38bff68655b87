"""The runs table over an experiment of 100,000 runs: filtered, sorted, paged, in Chromium."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fixtures.browser import shot


def test_runs_table_over_100000_runs(page: Any, ui_server: Any, big_experiment: int) -> None:
    page.goto(ui_server.url + "/experiments")
    assert page.locator("#experiments tbody tr", has_text="sweep-100k").locator("td:nth-child(3)").inner_text() == "100,000"
    page.goto(f"{ui_server.url}/experiments/{big_experiment}")
    assert page.locator("#runs tbody tr").count() == 50
    assert page.locator(".pager span").first.inner_text() == "Runs 1–50"
    assert page.locator("#runs tbody td:nth-child(2)").first.inner_text() == "sweep-099999"  # newest first
    flt = "metrics.acc > 0.5 and params.model = 'gbr' and tags.team = 'ml'"
    url = f"{ui_server.url}/experiments/{big_experiment}?filter={quote(flt)}&order=metrics.acc+desc&size=100"
    page.goto(url)
    accs = [float(v) for v in page.locator("#runs tbody td:nth-child(9)").all_inner_texts()]
    headers = page.locator("#runs thead th").all_inner_texts()
    assert headers[8].startswith("metrics.acc")
    assert len(accs) == 100 and accs == sorted(accs, reverse=True) and accs[-1] > 0.5
    assert set(page.locator("#runs tbody td:nth-child(8)").all_inner_texts()) == {"gbr"}
    shot(page, "runs-100k")
    # paging deep into the result stays on the server: page 100 of the unfiltered table
    page.goto(f"{ui_server.url}/experiments/{big_experiment}?page=100&order=name+asc")
    assert page.locator(".pager span").first.inner_text() == "Runs 4,951–5,000"
    assert page.locator("#runs tbody td:nth-child(2)").first.inner_text() == "sweep-004950"
    page.click("a[rel=next]")
    page.wait_for_url("**page=101*")
    assert page.locator("#runs tbody td:nth-child(2)").first.inner_text() == "sweep-005000"
