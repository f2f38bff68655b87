"""Runs table and run page in Chromium on the project of conftest.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fixtures.browser import shot, until


def test_runs_table_filters_sorts_chooses_columns_and_links_to_runs(page: Any, ui_server: Any, ui_project: Any) -> None:
    iris = ui_project.experiment_ids["iris"]
    page.goto(f"{ui_server.url}/experiments/{iris}")
    assert page.locator("#runs tbody tr").count() == 4
    headers = page.locator("#runs thead th").all_inner_texts()
    assert "metrics.accuracy" in headers and "params.model" in headers
    # filter in the filter language, from the form
    page.fill("#filter", "params.model = 'forest'")
    page.click("#search button[type=submit]")
    page.wait_for_url("**filter=*")
    names = page.locator("#runs tbody td:nth-child(2)").all_inner_texts()
    assert sorted(names) == ["forest-2", "forest-3"]
    # sort by a metric from its header, both ways
    page.goto(f"{ui_server.url}/experiments/{iris}?order=metrics.loss+asc")
    assert page.locator("#runs tbody td:nth-child(2)").all_inner_texts()[0] == "forest-3"  # lowest final loss: i=3
    page.goto(f"{ui_server.url}/experiments/{iris}?order=name+desc")
    assert page.locator("#runs tbody td:nth-child(2)").all_inner_texts() == ["logreg-1", "logreg-0", "forest-3", "forest-2"]
    assert page.locator('th[aria-sort="descending"]').inner_text().startswith("Name")
    # chosen columns come from the URL
    page.goto(f"{ui_server.url}/experiments/{iris}?col=tags.kind&col=metrics.accuracy")
    assert page.locator("#runs thead th").all_inner_texts()[5:] == ["tags.kind", "metrics.accuracy"]
    shot(page, "runs-table")
    page.click("#runs tbody a >> nth=0")
    page.wait_for_url("**/runs/*")
    assert page.locator("#summary").is_visible()


def test_filter_syntax_error_is_shown_at_its_position(page: Any, ui_server: Any, ui_project: Any) -> None:
    iris = ui_project.experiment_ids["iris"]
    bad = "metrics.accuracy > 0.5 and params.model = = 'x'"
    import pytest

    from conveyor.errors import FilterSyntaxError
    from conveyor.store import parse_filter

    with pytest.raises(FilterSyntaxError) as raised:
        parse_filter(bad)
    at = raised.value.position
    assert at == bad.index("= '")  # the second "=" is the problem
    page.goto(f"{ui_server.url}/experiments/{iris}?filter={quote(bad)}")
    box = page.locator("#filter-error")
    assert "Filter error" in box.inner_text() and f"position {at}" in box.inner_text()
    assert box.locator("mark").inner_text() == "="
    assert box.locator("pre").inner_text() == bad
    assert page.locator("#filter").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "filter"
    assert page.evaluate("document.getElementById('filter').selectionStart") == at
    assert page.locator("#runs tbody tr").count() == 0  # nothing else breaks: the table is there, empty
    shot(page, "runs-filter-error")


def test_run_page_shows_params_tags_environment_charts_and_artifacts(page: Any, ui_server: Any, ui_project: Any) -> None:
    run_id = ui_project.runs["logreg-0"]
    page.goto(f"{ui_server.url}/runs/{run_id}")
    assert page.locator("h1").inner_text() == "logreg-0"
    params = page.locator("#params").inner_text()
    assert "C\t0.1" in params and "model\tlogreg" in params
    assert "kind\tlogreg" in page.locator("#tags").inner_text()
    assert "Python" in page.locator("#environment").inner_text()
    assert page.locator("#packages summary").inner_text().endswith("installed packages")
    for key in ("loss", "val_loss", "accuracy"):
        page.wait_for_selector(f'figure[data-key="{key}"][data-loaded="1"]')
    loss = page.locator('figure[data-key="loss"]')
    assert loss.locator(".note").inner_text() == "60 points"
    assert loss.locator("canvas").get_attribute("data-drawn") == "60"
    # hover shows the value under the cursor
    box = loss.locator("canvas").bounding_box()
    page.mouse.move(box["x"] + 60, box["y"] + 100)
    assert loss.locator(".chart-tip").inner_text().startswith("step ")
    # drag to zoom asks the server for that range only
    with page.expect_response(lambda r: "/series?" in r.url and "lo=" in r.url):
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + 100)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + 100, steps=4)
        page.mouse.up()
    until(page, "Number(document.querySelector('figure[data-key=\"loss\"] canvas').dataset.drawn) < 30")
    page.check("#logscale")
    page.fill("#smoothing", "0.6")
    page.locator("#smoothing").dispatch_event("input")
    assert page.locator("#smoothing-value").inner_text() == "0.6"
    artifacts = page.locator("#artifacts").inner_text()
    for name in ("config.json", "sample.csv", "sepals.png", "train.txt", "head.parquet", "conveyor-model.json"):
        assert name in artifacts
    shot(page, "run")


def test_artifact_previews(page: Any, ui_server: Any, ui_project: Any) -> None:
    run_id = ui_project.runs["logreg-0"]
    base = f"{ui_server.url}/runs/{run_id}/artifacts"
    page.goto(f"{base}/plots/sepals.png")
    image = page.locator(".preview img")
    until(page, "document.querySelector('.preview img').naturalWidth > 100")
    assert image.get_attribute("alt") == "image artifact plots/sepals.png"
    shot(page, "artifact-image")
    page.goto(f"{base}/config.json")
    assert '"classes": 3' in page.locator("#preview").inner_text()
    page.goto(f"{base}/data/sample.csv")
    assert page.locator("#preview-table thead th").all_inner_texts() == ["sepal_length", "sepal_width", "target"]
    assert page.locator("#preview-table tbody tr").count() == 30
    shot(page, "artifact-csv")
    page.goto(f"{base}/data/head.parquet")
    assert "20 rows × 2 columns" in page.locator("main").inner_text()
    assert page.locator("#preview-table tbody tr").count() == 20
    page.goto(f"{base}/logs/train.txt")
    assert page.locator("#preview").inner_text().startswith("training finished")
    page.goto(f"{base}/model")
    assert "sklearn" in page.locator("#model-meta").inner_text() or "skops" in page.locator("#model-meta").inner_text()
    assert "sepal length (cm)" in page.locator("#signature").inner_text()
    shot(page, "artifact-model")
    gbr = ui_project.runs["gbr-2"]
    page.goto(f"{ui_server.url}/runs/{gbr}/artifacts/model")
    assert "bmi" in page.locator("#signature").inner_text()  # the regressor's inputs, another model kind
