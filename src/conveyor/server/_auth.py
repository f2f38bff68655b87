"""Authentication of every route but ``/health``: a user's API token or password.

On when the server binds anything but loopback, or when the project has users; off only on
127.0.0.1 without them (see ``conveyor server``). Accepted, as the ``mlflow`` client sends them:

- ``Authorization: Bearer <token>`` (``MLFLOW_TRACKING_TOKEN``);
- ``Authorization: Basic user:password`` or ``Basic user:<token>``
  (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``); a token must be that user's.

A disabled user, a revoked token, a wrong password: a 401, the same answer for each, so it
does not tell which part was wrong. The checks (a store query; scrypt for a password not yet
verified in this process) run on a worker thread, never on the event loop.

The web UI's login page keeps the token in an HttpOnly, SameSite=Strict cookie
(``conveyor_token``), accepted here like a Bearer header; a browser page asked for without
valid credentials is sent to ``/login`` instead of getting the API's 401. A sign-in there with
user and password gets a session token of that user (:class:`Sessions`, ``[server]
session_hours``); ``/logout`` (open, so an expired session can still sign out) revokes the
session token the cookie holds, never an API token.
"""

from __future__ import annotations

import base64
import binascii

from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.server._errors import ApiError
from conveyor.server._http import error_response
from conveyor.errors import NotFound
from conveyor.server._users import TOKEN_PREFIX, Principal, Users, hash_password, verify_password

OPEN_PATHS = {"/health", "/login", "/logout"}
#: The web UI's stylesheet and scripts hold no data: the login page needs them before a token.
OPEN_PREFIXES = ("/static/",)
#: Machine paths: a request without credentials gets the 401 there, a browser page the login form.
API_PREFIXES = ("/api/", "/ajax-api/", "/version", "/metrics")
#: The web UI keeps the token it signed in with in this HttpOnly, SameSite=Strict cookie.
COOKIE = "conveyor_token"
__all__ = ["COOKIE", "OPEN_PATHS", "Authenticate", "Principal", "Sessions", "credentials"]


def credentials(header: str) -> tuple[str | None, str] | None:
    """(user name or None, secret) from an Authorization header, or None when unusable."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return (None, value.strip()) if value.strip() else None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, secret = decoded.partition(":")
        return (user, secret) if sep and user and secret else None
    return None


def _cookie(scope: Scope) -> str | None:
    header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"cookie"), "")
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return (morsel.value or None) if morsel is not None else None


def authenticate(users: Users, user: str | None, secret: str) -> Principal | None:
    if user is None or secret.startswith(TOKEN_PREFIX):
        found = users.by_token(secret)
        if found is not None and user is not None and found.name != user:
            return None  # Basic auth with another user's token
        if found is not None or user is None:
            return found
    return users.by_password(user, secret)


class Sessions:
    """The web UI's sign-in and sign-out (blocking: call them on a worker thread).

    ``check_token`` is the token form's check; ``sign_in`` issues a session token of ``hours``
    for a user whose password is right; ``sign_out`` revokes a session token. Failures return
    None and say nothing of which part was wrong; a password is never logged or kept."""

    def __init__(self, users: Users, hours: float) -> None:
        self.users = users
        self.hours = hours
        self._decoy: str | None = None

    def check_token(self, token: str) -> str | None:
        found = authenticate(self.users, None, token)
        return found.name if found is not None else None

    def sign_in(self, user: str, password: str) -> str | None:
        """A new session token of ``user``, or None (unknown, disabled, no or wrong password)."""
        found = self.users.by_password(user, password)
        if found is None:
            self._spend_like_a_check(user, password)
            return None
        return self.users.create_session(found.name, self.hours)

    def sign_out(self, token: str) -> bool:
        return self.users.end_session(token)

    def _spend_like_a_check(self, user: str, password: str) -> None:
        """An unknown or password-less user costs the same scrypt as a wrong password, so the
        answer's timing does not tell which user names exist."""
        try:
            real = self.users.get(user)
        except NotFound:
            real = None
        if real is None or not real.has_password or not real.active:
            if self._decoy is None:
                self._decoy = hash_password(TOKEN_PREFIX + "decoy")
            verify_password(password, self._decoy)


def unauthenticated(path: str, message: str) -> object:
    if path.startswith("/api/v1/") or path == "/api/v1":
        from conveyor.server.api._errors import ApiV1Error

        response = ApiV1Error("UNAUTHENTICATED", message).response()
    else:
        response = error_response(ApiError("UNAUTHENTICATED", message))
    response.headers["www-authenticate"] = 'Bearer realm="conveyor", Basic realm="conveyor"'
    return response


class Authenticate:
    """ASGI middleware: a 401 without a valid token or password of an active user; else the
    :class:`Principal` in ``scope["conveyor.user"]``."""

    def __init__(self, app: ASGIApp, users: Users) -> None:
        self.app = app
        self.users = users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or scope["path"].startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), "")
        cookie = None if header else _cookie(scope)
        given = credentials(header) if header else ((None, cookie) if cookie else None)
        principal = await run_in_threadpool(authenticate, self.users, *given) if given else None
        if principal is None and scope["method"] in ("GET", "HEAD") and not scope["path"].startswith(API_PREFIXES):
            query = scope["query_string"].decode("latin-1")
            target = scope["path"] + ("?" + query if query else "")
            await RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)(scope, receive, send)
            return
        if principal is None:
            why = "credentials are required" if given is None else \
                "the credentials are not valid (unknown, revoked or disabled)"
            response = unauthenticated(scope["path"], f"{why}: send Authorization: Bearer <token> "
                                       "(MLFLOW_TRACKING_TOKEN for the mlflow client) or Basic user:password "
                                       "(MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)")
            await response(scope, receive, send)  # type: ignore[operator]
            return
        scope["conveyor.user"] = principal
        await self.app(scope, receive, send)
