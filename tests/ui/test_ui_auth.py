"""Auth on: the login page (token → HttpOnly SameSite=Strict cookie), pages show only what the
user may read (the server's /api/v1 policy), the 403 page leaks nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fixtures.browser import LiveServer, shot


@pytest.fixture(scope="module")
def auth_server(ui_project: Any) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """Authentication on with real users and roles: ``ana`` is an admin, ``guest`` may read
    the diabetes experiment only (the default role for everything else is none)."""
    from conveyor.server import Users, create_app
    from conveyor.settings import ServerSettings

    users = Users(ui_project.tracker.store)
    users.add("ana", admin=True)
    users.add("guest")
    users.grant("guest", "experiment", str(ui_project.experiment_ids["diabetes"]), "read")
    issued = {"ana": users.create_token("ana", "ui"), "guest": users.create_token("guest", "ui")}
    app = create_app(ui_project.tracker, auth=True, server=ServerSettings(default_role="none"), users=users)
    server = LiveServer(app)
    yield server, issued
    server.stop()


def _login(page: Any, url: str, token: str) -> None:
    page.fill("#token", token)
    page.click(".login button[type=submit]")


def test_login_with_a_token_sets_a_strict_httponly_cookie(page: Any, auth_server: Any) -> None:
    server, tokens = auth_server
    page.console.allow("401")
    page.goto(server.url + "/experiments?archived=1")
    assert "/login?next=" in page.url
    assert page.locator("h1").inner_text() == "Sign in"
    shot(page, "login")
    _login(page, server.url, "not-a-token")
    assert "not valid" in page.locator("#login-error").inner_text()
    assert page.locator("#token").get_attribute("aria-invalid") == "true"
    _login(page, server.url, tokens["ana"])
    page.wait_for_url(server.url + "/experiments?archived=1")
    assert "Signed in as ana" in page.locator("header").inner_text()
    cookie = next(c for c in page.context.cookies() if c["name"] == "conveyor_token")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the token
    assert page.locator("#experiments tbody tr").count() >= 4
    page.click("header .signout button")
    page.wait_for_url("**/login")
    page.goto(server.url + "/experiments")
    assert "/login" in page.url  # signed out: back to the form


def test_login_never_redirects_off_site(page: Any, auth_server: Any) -> None:
    server, tokens = auth_server
    page.goto(server.url + "/login?next=//evil.example/x")
    _login(page, server.url, tokens["ana"])
    page.wait_for_url(server.url + "/experiments")  # "/" instead of the other site, then the home page


def test_guest_sees_only_what_it_may_read_and_403_leaks_nothing(page: Any, auth_server: Any, ui_project: Any) -> None:
    server, tokens = auth_server
    page.console.allow("403")
    page.goto(server.url + "/login")
    _login(page, server.url, tokens["guest"])
    page.goto(server.url + "/experiments")
    assert page.locator("#experiments tbody td:nth-child(2)").all_inner_texts() == ["diabetes"]
    diabetes = ui_project.experiment_ids["diabetes"]
    page.goto(f"{server.url}/experiments/{diabetes}")
    assert page.locator("#runs tbody tr").count() == 2
    run_id = ui_project.runs["gbr-2"]
    page.goto(f"{server.url}/runs/{run_id}")
    page.wait_for_selector('figure[data-key="train_mse"][data-loaded="1"]')  # its API calls are allowed
    iris_run = ui_project.runs["logreg-0"]
    for path in [f"/experiments/{ui_project.experiment_ids['iris']}", f"/runs/{iris_run}",
                 f"/runs/{iris_run}/artifacts/config.json", f"/compare?run={run_id}&run={iris_run}"]:
        response = page.goto(server.url + path)
        assert response is not None and response.status == 403, path
        assert page.locator("h1").inner_text() == "Forbidden"
        html = page.content()
        for secret in ("iris", "logreg", "sepal", "accuracy"):
            assert secret not in html, (path, secret)
    shot(page, "403")
    series = page.request.get(f"{server.url}/runs/{iris_run}/series?key=loss")
    assert series.status == 403 and "loss" not in series.text().replace("key=loss", "")
    raw = page.request.get(f"{server.url}/runs/{iris_run}/raw/config.json")
    assert raw.status == 403 and "classes" not in raw.text()


def test_a_login_form_posted_from_another_site_is_refused(auth_server: Any) -> None:
    import httpx

    server, tokens = auth_server
    form = {"token": tokens["ana"], "next": "/experiments"}
    refused = httpx.post(server.url + "/login", data=form, headers={"origin": "http://evil.example"})
    assert refused.status_code == 403 and "conveyor_token" not in refused.headers.get("set-cookie", "")
    accepted = httpx.post(server.url + "/login", data=form, headers={"origin": server.url})
    assert accepted.status_code == 303 and accepted.headers["location"] == "/experiments"
    cookie = accepted.headers["set-cookie"]
    assert "conveyor_token=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
