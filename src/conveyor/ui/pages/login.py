"""Sign in and out when the server requires tokens.

The login form takes an API token (``conveyor tokens create NAME``); a valid one is stored in
an HttpOnly, SameSite=Strict cookie that the server's authentication middleware accepts like
an ``Authorization`` header. SameSite=Strict keeps other sites' pages from sending it, so a
form elsewhere cannot act as the user.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from conveyor.ui._render import render

COOKIE = "conveyor_token"
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM = 16 * 1024


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of this site only (never ``//host`` or a URL)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


async def login(request: Request) -> Response:
    check = request.app.state.check_token
    target = safe_next(request.query_params.get("next"))
    if check is None:
        return RedirectResponse(target, status_code=303)
    if request.method == "GET":
        return render(request, "login.html", title="Sign in", next=target, error=None)
    body = await request.body()
    if len(body) > MAX_FORM or request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
        return render(request, "login.html", 400, title="Sign in", next=target,
                      error=f"Send the form as {FORM_TYPE}, at most {MAX_FORM} bytes.")
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    token = (form.get("token") or [""])[0].strip()
    target = safe_next((form.get("next") or ["/"])[0])
    name = check(token) if token else None
    if name is None:
        error = "Enter a token." if not token else "That token is not valid (unknown or revoked)."
        return render(request, "login.html", 401, title="Sign in", next=target, error=error)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


routes = [
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
]
