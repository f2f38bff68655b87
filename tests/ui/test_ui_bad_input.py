"""Bad input and faults in Chromium: HTML in every name (escaped, no script runs), unknown
ids (the 404 page), a 200,000-point metric history, an artifact whose object is gone."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fixtures.browser import XSS
from fixtures.browser import shot, until


def _no_script_ran(page: Any) -> None:
    assert page.evaluate("typeof window.__xss") == "undefined", "injected markup ran as script"
    assert page.locator("main img[src=x]").count() == 0


def test_html_in_names_tags_params_and_artifact_paths_is_text(page: Any, ui_server: Any, ui_project: Any) -> None:
    page.goto(ui_server.url + "/experiments")
    assert ("hostile " + XSS) in page.locator("#experiments").inner_text()
    _no_script_ran(page)
    exp = ui_project.experiment_ids["hostile " + XSS]
    page.goto(f"{ui_server.url}/experiments/{exp}?col=params.html&col=tags.note")
    assert page.locator("h1").inner_text() == "hostile " + XSS
    assert ("run " + XSS) in page.locator("#runs").inner_text()
    assert XSS in page.locator("#runs tbody").inner_text()
    _no_script_ran(page)
    run_id = ui_project.runs["xss"]
    page.goto(f"{ui_server.url}/runs/{run_id}")
    assert page.locator("h1").inner_text() == "run " + XSS
    assert XSS in page.locator("#params").inner_text() and XSS in page.locator("#tags").inner_text()
    assert "notes/a<b>.txt" in page.locator("#artifacts").inner_text()
    _no_script_ran(page)
    shot(page, "run-hostile-names")
    page.click("text=notes/a<b>.txt")
    page.wait_for_url("**/artifacts/**")
    assert page.locator("#preview").inner_text() == XSS
    _no_script_ran(page)
    page.goto(f"{ui_server.url}/runs/{run_id}/artifacts/page.html")
    assert page.locator("#preview").inner_text() == XSS  # an HTML artifact is shown as its text
    _no_script_ran(page)
    page.goto(f"{ui_server.url}/compare?run={run_id}&run={ui_project.runs['logreg-0']}")
    assert XSS in page.locator("#diff").inner_text()
    _no_script_ran(page)
    # the raw bytes are a download that cannot run in this origin
    import httpx

    raw = httpx.get(f"{ui_server.url}/runs/{run_id}/raw/page.html")
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in raw.headers["content-security-policy"]


def test_unknown_ids_are_the_404_page(page: Any, ui_server: Any, ui_project: Any) -> None:
    page.console.allow("404")
    for path, text in [
        ("/runs/0123456789abcdef0123456789abcdef", "not found"),
        ("/experiments/99999", "There is no page"),
        ("/experiments/not-a-number", "There is no page"),
        (f"/runs/{ui_project.runs['logreg-0']}/artifacts/no/such/file.txt", "not found"),
    ]:
        response = page.goto(ui_server.url + path)
        assert response is not None and response.status == 404, path
        assert page.locator("h1").inner_text() == "Not found"
        assert text in page.locator("main").inner_text()
    shot(page, "404-run")


def test_a_200000_point_history_is_downsampled_and_zooms(page: Any, ui_server: Any, ui_project: Any) -> None:
    run_id = ui_project.runs["long"]
    page.goto(f"{ui_server.url}/runs/{run_id}")
    page.wait_for_selector('figure[data-key="loss"][data-loaded="1"]')
    note = page.locator('figure[data-key="loss"] .note').inner_text()
    assert note.startswith("200,000 points in ") and note.endswith("buckets (min–max band)")
    drawn = int(page.locator('figure[data-key="loss"] canvas').get_attribute("data-drawn"))
    assert 50 <= drawn <= 4096
    canvas = page.locator('figure[data-key="loss"] canvas')
    canvas.hover(position={"x": 200, "y": 100})
    assert "(min " in page.locator('figure[data-key="loss"] .chart-tip').inner_text()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 70, box["y"] + 100)
    page.mouse.down()
    page.mouse.move(box["x"] + 80, box["y"] + 100, steps=3)
    page.mouse.up()
    until(page, "document.querySelector('figure[data-key=\"loss\"] .note').textContent.indexOf('200,000') < 0")
    zoomed = page.locator('figure[data-key="loss"] .note').inner_text()
    assert int(zoomed.split(" ")[0].replace(",", "")) < 200_000
    page.check("#logscale")
    shot(page, "run-long-history")
    page.keyboard.press("Escape")


def test_an_artifact_whose_object_is_missing_says_so(page: Any, ui_server: Any, ui_project: Any) -> None:
    run_id = ui_project.runs["missing"]
    page.goto(f"{ui_server.url}/runs/{run_id}/artifacts/{quote('lost.txt')}")
    problem = page.locator("#preview-problem").inner_text()
    assert problem.startswith("cannot read this artifact's stored object")
    assert page.locator("h1").inner_text() == "lost.txt"
    shot(page, "artifact-missing-object")


def test_series_endpoint_rejects_bad_input_with_4xx(ui_server: Any, ui_project: Any) -> None:
    import httpx

    run_id = ui_project.runs["logreg-0"]
    base = f"{ui_server.url}/runs/{run_id}/series"
    for query, status, field in [("key=loss&buckets=0", 400, "buckets"), ("key=loss&buckets=x", 400, "buckets"),
                                 ("key=loss&x=epoch", 400, "x"), ("key=loss&lo=abc", 400, "lo"),
                                 ("key=nope", 404, None)]:
        answer = httpx.get(f"{base}?{query}")
        assert answer.status_code == status, query
        assert answer.json()["error"].get("field") == field or status == 404
    ok = httpx.get(f"{base}?key=loss&buckets=10").json()
    assert ok["exact"] is False and len(ok["x"]) == 10 and ok["count"] == 60
