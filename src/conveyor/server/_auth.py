"""Bearer-token authentication of every route but ``/health``.

On when the server binds anything but loopback, or when the project has active tokens;
off only on 127.0.0.1 without tokens. The mlflow client sends ``MLFLOW_TRACKING_TOKEN`` as
``Authorization: Bearer <token>``, and ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` as Basic
auth: there the password is the token (the user name is not checked yet).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.server._errors import ApiError
from conveyor.server._http import error_response
from conveyor.server._tokens import TokenStore

OPEN_PATHS = {"/health"}


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


class RequireToken:
    """ASGI middleware: a 401 in MLflow's error shape without a valid, unrevoked token."""

    def __init__(self, app: ASGIApp, tokens: TokenStore) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), "")
        token = _token(header) if header else None
        name = self.tokens.check(token) if token is not None else None
        if name is None:
            why = "a token is required" if token is None else "the token is not valid (unknown or revoked)"
            response = error_response(ApiError("UNAUTHENTICATED", f"{why}: send Authorization: Bearer <token> "
                                               "(MLFLOW_TRACKING_TOKEN for the mlflow client)"))
            response.headers["www-authenticate"] = 'Bearer realm="conveyor"'
            await response(scope, receive, send)
            return
        scope["conveyor.user"] = Principal(name)
        await self.app(scope, receive, send)
