"""Authentication of every route but ``/health``: a user's API token or password.

On when the server binds anything but loopback, or when the project has users; off only on
127.0.0.1 without them (see ``conveyor server``). Accepted, as the ``mlflow`` client sends them:

- ``Authorization: Bearer <token>`` (``MLFLOW_TRACKING_TOKEN``);
- ``Authorization: Basic user:password`` or ``Basic user:<token>``
  (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``); a token must be that user's.

A disabled user, a revoked token, a wrong password: a 401, the same answer for each, so it
does not tell which part was wrong. The checks (a store query; scrypt for a password not yet
verified in this process) run on a worker thread, never on the event loop.
"""

from __future__ import annotations

import base64
import binascii

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.server._errors import ApiError
from conveyor.server._http import error_response
from conveyor.server._users import TOKEN_PREFIX, Principal, Users

OPEN_PATHS = {"/health"}
__all__ = ["OPEN_PATHS", "Authenticate", "Principal", "credentials"]


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


def authenticate(users: Users, user: str | None, secret: str) -> Principal | None:
    if user is None or secret.startswith(TOKEN_PREFIX):
        found = users.by_token(secret)
        if found is not None and user is not None and found.name != user:
            return None  # Basic auth with another user's token
        if found is not None or user is None:
            return found
    return users.by_password(user, secret)


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
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), "")
        given = credentials(header) if header else None
        principal = await run_in_threadpool(authenticate, self.users, *given) if given else None
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
