"""Auth on: the login page (token, or user and password → a session token; either in an
HttpOnly SameSite=Strict cookie), pages show only what the user may read (the server's /api/v1
policy), the 403 page leaks nothing, signing out revokes the session, expired sessions are
refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fixtures.browser import LiveServer, shot


PASSWORD = "guest's long password"


@pytest.fixture(scope="module")
def auth_users(ui_project: Any) -> Any:
    """Real users and roles: ``ana`` is an admin, ``guest`` (with a password) may read the
    diabetes experiment only (the default role for everything else is none), ``carl`` is
    disabled."""
    from conveyor.server import Users

    users = Users(ui_project.tracker.store)
    users.add("ana", admin=True)
    users.add("guest", password=PASSWORD)
    users.add("carl", password=PASSWORD)
    users.disable("carl")
    users.grant("guest", "experiment", str(ui_project.experiment_ids["diabetes"]), "read")
    return users


@pytest.fixture(scope="module")
def auth_server(ui_project: Any, auth_users: Any) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """Authentication on over ``auth_users``; sessions last 2 hours."""
    from conveyor.server import create_app
    from conveyor.settings import ServerSettings

    users = auth_users
    issued = {"ana": users.create_token("ana", "ui"), "guest": users.create_token("guest", "ui")}
    app = create_app(ui_project.tracker, auth=True, server=ServerSettings(default_role="none", session_hours=2),
                     users=users)
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
    # signing out of a session made with an API token clears the cookie but never revokes the token
    assert not [c for c in page.context.cookies() if c["name"] == "conveyor_token"]
    assert httpx.get(server.url + "/api/v1/info", headers={"authorization": f"Bearer {tokens['ana']}"}).status_code == 200


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


def test_a_login_form_posted_from_another_site_is_refused(auth_server: Any, auth_users: Any) -> None:
    server, tokens = auth_server
    form = {"token": tokens["ana"], "next": "/experiments"}
    refused = httpx.post(server.url + "/login", data=form, headers={"origin": "http://evil.example"})
    assert refused.status_code == 403 and "conveyor_token" not in refused.headers.get("set-cookie", "")
    accepted = httpx.post(server.url + "/login", data=form, headers={"origin": server.url})
    assert accepted.status_code == 303 and accepted.headers["location"] == "/experiments"
    cookie = accepted.headers["set-cookie"]
    assert "conveyor_token=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie

    sessions_before = _sessions(auth_users, "guest")
    password_form = {"user": "guest", "password": PASSWORD, "next": "/experiments"}
    refused = httpx.post(server.url + "/login", data=password_form, headers={"origin": "http://evil.example"})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers and PASSWORD not in refused.text
    assert _sessions(auth_users, "guest") == sessions_before  # no session issued


def _sessions(users: Any, user: str) -> list[Any]:
    return [t for t in users.tokens(user) if t.name.startswith("ui-session-")]


def _password_login(page: Any, user: str, password: str) -> None:
    page.fill("#user", user)
    page.fill("#password", password)
    page.click(".login button[type=submit]")


def _cookie_of(page: Any) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "conveyor_token")


def test_password_login_lands_on_the_page_asked_for_and_shows_only_what_the_user_may_read(
        page: Any, auth_server: Any, auth_users: Any, ui_project: Any) -> None:
    from conveyor.entities import now_ms
    from conveyor.server._users import session_expiry

    server, _tokens = auth_server
    page.console.allow("403")
    diabetes = ui_project.experiment_ids["diabetes"]
    page.goto(f"{server.url}/experiments/{diabetes}?sort=start_time")
    assert "/login?next=" in page.url
    assert page.locator("legend").all_inner_texts() == ["User and password", "Or an API token"]
    shot(page, "login-password")
    before, active_before = now_ms(), len([t for t in _sessions(auth_users, "guest") if t.active])
    _password_login(page, "guest", PASSWORD)
    page.wait_for_url(f"{server.url}/experiments/{diabetes}?sort=start_time")  # the page asked for
    after = now_ms()
    assert "Signed in as guest" in page.locator("header").inner_text()
    assert page.locator("#runs tbody tr").count() == 2
    cookie = next(c for c in page.context.cookies() if c["name"] == "conveyor_token")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and page.evaluate("document.cookie") == ""
    # the cookie holds a new session token of guest's, valid for [server] session_hours (2 here)
    principal = auth_users.by_token(cookie["value"])
    assert principal is not None and principal.name == "guest" and principal.token.startswith("ui-session-")
    assert before + 2 * 3_600_000 <= session_expiry(principal.token) <= after + 2 * 3_600_000
    assert len([t for t in _sessions(auth_users, "guest") if t.active]) == active_before + 1
    # only what guest may read: one experiment listed, the others refused with nothing leaked
    page.goto(server.url + "/experiments")
    assert page.locator("#experiments tbody td:nth-child(2)").all_inner_texts() == ["diabetes"]
    response = page.goto(f"{server.url}/experiments/{ui_project.experiment_ids['iris']}")
    assert response is not None and response.status == 403 and page.locator("h1").inner_text() == "Forbidden"
    assert "logreg" not in page.content() and "sepal" not in page.content()
    listed = page.request.get(server.url + "/api/v1/experiments")
    assert listed.status == 200 and "iris" not in listed.text() and "diabetes" in listed.text()
    assert PASSWORD not in page.content()


def test_wrong_password_unknown_or_disabled_user_get_one_generic_error(
        page: Any, auth_server: Any, auth_users: Any) -> None:
    server, _tokens = auth_server
    page.console.allow("401")
    sessions_before = _sessions(auth_users, "guest") + _sessions(auth_users, "carl")
    messages = []
    for user, password in [("guest", "not guest's password"), ("nobody", PASSWORD), ("carl", PASSWORD)]:
        page.goto(server.url + "/login?next=/experiments")
        _password_login(page, user, password)
        page.wait_for_selector("#login-error")
        assert page.url.startswith(server.url + "/login")
        messages.append(page.locator("#login-error").inner_text())
        assert page.locator("#user").input_value() == user  # the name is kept to correct it
        assert page.locator("#password").input_value() == ""  # the password is never sent back
        assert page.locator("#password").get_attribute("aria-invalid") == "true"
        assert password not in page.content()
        assert not [c for c in page.context.cookies() if c["name"] == "conveyor_token"]
    shot(page, "login-failed")
    assert messages[0] == messages[1] == messages[2] and "not valid" in messages[0]  # no user enumeration
    page.goto(server.url + "/login")
    page.fill("#token", "cvt_not-a-token")
    page.click(".login button[type=submit]")
    page.wait_for_selector("#login-error")
    assert page.locator("#login-error").inner_text() == messages[0]  # a bad token: the same answer
    assert _sessions(auth_users, "guest") + _sessions(auth_users, "carl") == sessions_before


def test_logout_revokes_the_session_token_only(page: Any, auth_server: Any, auth_users: Any) -> None:
    server, tokens = auth_server
    page.goto(server.url + "/login")
    _password_login(page, "guest", PASSWORD)
    page.wait_for_url(server.url + "/experiments")
    old = _cookie_of(page)
    session_name = auth_users.by_token(old).token
    assert httpx.get(server.url + "/api/v1/info", cookies={"conveyor_token": old}).json()["user"] == "guest"
    page.click("header .signout button")
    page.wait_for_url("**/login")
    assert not [c for c in page.context.cookies() if c["name"] == "conveyor_token"]
    # in the store: that session revoked, guest's API token untouched
    revoked = next(t for t in auth_users.tokens("guest") if t.name == session_name)
    assert revoked.revoked_at is not None and auth_users.by_token(old) is None
    assert next(t for t in auth_users.tokens("guest") if t.name == "ui").active
    assert auth_users.by_token(tokens["guest"]).name == "guest"
    # a request carrying the old cookie: refused by the API, sent to the login form by a page
    api = httpx.get(server.url + "/api/v1/info", cookies={"conveyor_token": old})
    assert api.status_code == 401 and api.json()["error"]["code"] == "UNAUTHENTICATED"
    html = httpx.get(server.url + "/experiments", cookies={"conveyor_token": old})
    assert html.status_code == 303 and html.headers["location"].startswith("/login?next=")


def test_an_expired_session_is_refused(page: Any, auth_server: Any, auth_users: Any) -> None:
    server, _tokens = auth_server
    live = auth_users.create_session("guest", hours=1)
    expired = auth_users.create_session("guest", hours=-1 / 3600)  # ended a second ago
    for token, works in [(live, True), (expired, False)]:
        api = httpx.get(server.url + "/api/v1/info", cookies={"conveyor_token": token})
        assert api.status_code == (200 if works else 401), api.text
    page.context.add_cookies([{"name": "conveyor_token", "value": expired, "url": server.url,
                               "httpOnly": True, "sameSite": "Strict"}])
    page.goto(server.url + "/experiments")
    assert "/login?next=%2Fexperiments" in page.url and page.locator("h1").inner_text() == "Sign in"
    # signing out of an expired session still works (/logout is open) and clears the cookie
    kind = page.evaluate("async () => (await fetch('/logout', {method: 'POST', redirect: 'manual'})).type")
    assert kind == "opaqueredirect"
    assert not [c for c in page.context.cookies() if c["name"] == "conveyor_token"]
