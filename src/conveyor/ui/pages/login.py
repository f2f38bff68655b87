"""Sign in and out when the server requires authentication.

The login form takes a user name and password, or an API token (``conveyor tokens create
NAME``). A right password gets a session token of that user (``ui-session-…``, valid for
``[server] session_hours``), a valid API token is used as it is; either is stored in an
HttpOnly, SameSite=Strict cookie that the server's authentication middleware accepts like an
``Authorization`` header, so revocation, disabled users and roles apply to it unchanged.
SameSite=Strict keeps other sites' pages from sending it, and a form posted from another
origin is refused, so a form elsewhere cannot act as the user. A failed sign-in gets one
message whatever was wrong (unknown user, wrong password, disabled user, bad token); the
password is never logged nor put back into the page. Signing out revokes the session token
(never an API token) and clears the cookie.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from conveyor.ui._render import render

COOKIE = "conveyor_token"
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM = 16 * 1024
#: The one answer to every failed sign-in: it does not tell which user names exist.
FAILED = "Sign-in failed: the user name and password, or the token, are not valid."


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of this site only (never ``//host`` or a URL)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def same_origin(request: Request) -> bool:
    """A form posted from this site: its ``Origin`` (sent by browsers on POST) names this host.
    Stops another site from signing a visitor in under the other site's token."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser form (curl, tests); such a client holds the credentials anyway
    return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


def _page(request: Request, status: int = 200, *, next: str, error: str | None = None, user: str = "") -> Response:
    return render(request, "login.html", status, title="Sign in", next=next, error=error, login_user=user,
                  passwords=request.app.state.sessions is not None)


async def login(request: Request) -> Response:
    check = request.app.state.check_token
    sessions = request.app.state.sessions
    target = safe_next(request.query_params.get("next"))
    if check is None:
        return RedirectResponse(target, status_code=303)
    if request.method == "GET":
        return _page(request, next=target)
    if not same_origin(request):
        return _page(request, 403, next="/", error="This form was sent from another site; sign in from this page.")
    body = await request.body()
    if len(body) > MAX_FORM or request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
        return _page(request, 400, next=target, error=f"Send the form as {FORM_TYPE}, at most {MAX_FORM} bytes.")
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    token = (form.get("token") or [""])[0].strip()
    user = (form.get("user") or [""])[0].strip()
    password = (form.get("password") or [""])[0]
    target = safe_next((form.get("next") or ["/"])[0])
    if token and (user or password):
        return _page(request, 400, next=target, user=user,
                     error="Enter either a user name and password or a token, not both.")
    if token:
        signed_in = token if await run_in_threadpool(check, token) is not None else None
    elif user and password and sessions is not None:
        signed_in = await run_in_threadpool(sessions.sign_in, user, password)
    else:
        wanted = "a user name and password, or a token" if sessions is not None else "a token"
        return _page(request, 400, next=target, user=user, error=f"Enter {wanted}.")
    if signed_in is None:
        return _page(request, 401, next=target, user=user,
                     error=FAILED if sessions is not None else "Sign-in failed: the token is not valid.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, signed_in, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


async def logout(request: Request) -> Response:
    if not same_origin(request):
        return RedirectResponse("/", status_code=303)
    sessions = request.app.state.sessions
    token = request.cookies.get(COOKIE)
    if token and sessions is not None:
        await run_in_threadpool(sessions.sign_out, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


routes = [
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
]
