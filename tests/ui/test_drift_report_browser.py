"""The static drift report in Chromium: opened as a file (nothing fetched, no console error),
drifted columns first, and its headers re-sort the table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fixtures.browser import shot


def test_report_file_sorts_and_shows_axes(page: Any, tmp_path: Path) -> None:
    from conveyor.monitoring import compare
    from conveyor.monitoring._report import drift_report_data, render_html

    rng = np.random.default_rng(3)
    n = 1500

    def frame(shift: float) -> pd.DataFrame:
        age = rng.normal(40 + 12 * shift, 10, n)
        return pd.DataFrame({"age": age, "plan": rng.choice(["basic", "pro", "team"], n, p=[.5 - .3 * shift, .3,
                                                                                             .2 + .3 * shift]),
                             "tenure": rng.exponential(3, n), "visits": rng.poisson(4, n),
                             "score": 1 / (1 + np.exp(-(age - 45) / 4))})

    report = compare(frame(0), frame(1), prediction="score")
    path = tmp_path / "report.html"
    path.write_text(render_html(drift_report_data(report, title="train@1 → live@2")), encoding="utf-8")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    assert requests == [path.as_uri()]  # self-contained

    def order() -> list[str]:
        return page.locator("table.drift-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.column)")

    def flags() -> list[str]:
        return page.locator("table.drift-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.drifted)")

    assert flags() == sorted(flags(), reverse=True) and "true" in flags() and "false" in flags()
    assert order()[0] in ("age", "score", "plan")
    for svg in page.locator("figure, .card").locator("svg.chart").all():
        assert svg.locator("g.x-axis g.tick").count() >= 2 and svg.locator("g.y-axis g.tick").count() >= 2
    shot(page, "drift-report")

    page.get_by_role("button", name="column", exact=True).click()
    assert order() == sorted(order())
    page.get_by_role("button", name="column", exact=True).click()
    assert order() == sorted(order(), reverse=True)
    page.get_by_role("button", name="threshold", exact=True).focus()
    page.keyboard.press("Enter")
    thresholds = page.locator("table.drift-table tbody tr td:nth-child(8)").all_inner_texts()
    assert [float(t) for t in thresholds] == sorted(float(t) for t in thresholds)
    assert page.locator("th[aria-sort=ascending]").inner_text().startswith("threshold")
