"""The UI's frame in Chromium: navigation, the experiments list, the 404 page, keyboard access."""

from __future__ import annotations

from typing import Any

from fixtures.browser import shot


def test_experiments_page_lists_every_experiment_with_its_run_count(page: Any, ui_server: Any, ui_project: Any) -> None:
    page.goto(ui_server.url + "/")
    assert page.url == ui_server.url + "/experiments"
    assert page.title() == "Experiments · conveyor"
    rows = page.locator("#experiments tbody tr")
    names = rows.locator("td:nth-child(2) a").all_inner_texts()
    assert "iris" in names and "diabetes" in names and "long" in names
    iris = rows.filter(has_text="iris")
    assert iris.locator("td:nth-child(3)").inner_text() == "4"
    assert page.locator('nav[aria-label="Main"] a[aria-current="page"]').inner_text() == "Experiments"
    shot(page, "experiments")


def test_unknown_page_is_the_404_page_and_unknown_api_path_keeps_its_json(page: Any, ui_server: Any) -> None:
    page.console.allow("404")
    response = page.goto(ui_server.url + "/no/such/page?x=<b>")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "Not found"
    assert "There is no page at /no/such/page" in page.locator("main").inner_text()
    assert page.locator("nav a").count() >= 1  # the navigation is there to go back
    shot(page, "404")
    import httpx

    api = httpx.get(ui_server.url + "/api/2.0/mlflow/no-such-endpoint")
    assert api.status_code == 404 and api.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    method = httpx.post(ui_server.url + "/api/2.0/mlflow/runs/get")
    assert method.status_code == 405


def test_keyboard_reaches_the_navigation_and_skip_link(page: Any, ui_server: Any) -> None:
    page.goto(ui_server.url + "/experiments")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") == "A"
