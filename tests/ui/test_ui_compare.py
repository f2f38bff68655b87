"""Comparing runs in Chromium: diff table, parallel coordinates, scatter, overlaid curves."""

from __future__ import annotations

from typing import Any

from fixtures.browser import shot


def test_compare_from_the_runs_table(page: Any, ui_server: Any, ui_project: Any) -> None:
    iris = ui_project.experiment_ids["iris"]
    page.goto(f"{ui_server.url}/experiments/{iris}?order=name+asc")
    assert page.locator("#compare-button").is_disabled()
    boxes = page.locator('#runs input[name="run"]')
    for i in range(4):
        boxes.nth(i).check()
    assert page.locator("#compare-button").inner_text() == "Compare 4 runs"
    page.click("#compare-button")
    page.wait_for_url("**/compare?run=*")
    assert page.locator("h1").inner_text() == "Compare 4 runs"
    diff = page.locator("#diff")
    model_row = diff.locator("tbody tr", has=page.locator('th:text-is("model")'))
    assert model_row.get_attribute("class") == "differs"
    team_row = diff.locator("tbody tr", has=page.locator('th:text-is("team")'))
    assert team_row.get_attribute("class") is None  # all "ml": not highlighted
    assert page.locator("#parallel polyline").count() == 4
    assert "params.model" in (page.locator("#parallel").text_content() or "")
    assert page.locator("#scatter circle").count() >= 2
    for key in ("loss", "val_loss", "accuracy"):
        page.wait_for_selector(f'figure[data-key="{key}"][data-loaded="1"]')
    assert page.locator('figure[data-key="loss"] .note').inner_text() == "4 of 4 runs"
    assert page.locator('figure[data-key="loss"] canvas').get_attribute("data-drawn") == str(4 * 60)
    page.locator('figure[data-key="loss"] canvas').hover(position={"x": 100, "y": 80})
    assert page.locator('figure[data-key="loss"] .chart-tip').inner_text().count(":") == 4  # one value per run
    shot(page, "compare")
    # only the differences, chosen in the URL
    page.check('input[name="only"]')
    page.click("#compare-options button")
    page.wait_for_url("**only=diff*")
    assert page.locator("#diff tbody tr:not(.differs)").count() == 0


def test_compare_two_model_kinds_with_different_metrics(page: Any, ui_server: Any, ui_project: Any) -> None:
    a, b = ui_project.runs["logreg-0"], ui_project.runs["gbr-3"]
    page.goto(f"{ui_server.url}/compare?run={a}&run={b}&metric=accuracy&x=model")
    page.wait_for_selector('figure[data-key="train_mse"][data-loaded="1"]')
    assert page.locator('figure[data-key="train_mse"] .note').inner_text() == "1 of 2 runs"
    assert page.locator("#diff tbody tr.differs").count() > 3


def test_compare_unknown_run_is_the_404_page(page: Any, ui_server: Any, ui_project: Any) -> None:
    page.console.allow("404")
    response = page.goto(f"{ui_server.url}/compare?run={ui_project.runs['logreg-0']}&run=0000nosuchrun")
    assert response is not None and response.status == 404
    assert "0000nosuchrun" in page.locator("main").inner_text()
