"""Bearer-token authentication of every route but ``/health``.

On when the server binds anything but loopback, or when the project has active tokens;
off only on 127.0.0.1 without tokens. The mlflow client sends ``MLFLOW_TRACKING_TOKEN`` as
``Authorization: Bearer <token>``, and ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` as Basic
auth: there the password is the token (the user name is not checked yet). The web UI's
login page keeps the token in an HttpOnly, SameSite=Strict cookie (``conveyor_token``),
accepted here like the header; a browser page asked for without a valid token is sent to
``/login`` instead of getting the API's 401.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlencode

from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.server._errors import ApiError
from conveyor.server._http import error_response
from conveyor.server._tokens import TokenStore

OPEN_PATHS = {"/health", "/login"}
#: The web UI's stylesheet and scripts hold no data: the login page needs them before a token.
OPEN_PREFIXES = ("/static/",)
#: Machine paths: a request without a token gets the 401 there, a browser page the login form.
API_PREFIXES = ("/api/", "/ajax-api/", "/version", "/metrics")
#: The web UI keeps the token it signed in with in this HttpOnly, SameSite=Strict cookie.
COOKIE = "conveyor_token"


@dataclass(frozen=True)
class Principal:
    """Who sent a request: for now the name of the token it carried."""

    name: str


def _token(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def _cookie(scope: Scope) -> str | None:
    header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"cookie"), "")
    if not header:
        return None
    jar = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value or None if morsel is not None else None


class RequireToken:
    """ASGI middleware: a 401 in MLflow's error shape without a valid, unrevoked token."""

    def __init__(self, app: ASGIApp, tokens: TokenStore) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or scope["path"].startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), "")
        token = _token(header) if header else _cookie(scope)
        name = self.tokens.check(token) if token is not None else None
        if name is None and scope["method"] in ("GET", "HEAD") and not scope["path"].startswith(API_PREFIXES):
            target = scope["path"] + ("?" + scope["query_string"].decode("latin-1") if scope["query_string"] else "")
            await RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)(scope, receive, send)
            return
        if name is None:
            why = "a token is required" if token is None else "the token is not valid (unknown or revoked)"
            response = error_response(ApiError("UNAUTHENTICATED", f"{why}: send Authorization: Bearer <token> "
                                               "(MLFLOW_TRACKING_TOKEN for the mlflow client)"))
            response.headers["www-authenticate"] = 'Bearer realm="conveyor"'
            await response(scope, receive, send)
            return
        scope["conveyor.user"] = Principal(name)
        await self.app(scope, receive, send)
