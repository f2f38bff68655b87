"""Who may see what: the server's permission policy, asked by every page.

The policy is the one ``/api/v1`` uses (``allows(user, kind, resource, level)``), handed to
:func:`conveyor.ui.create_ui` by the server, so a page never shows what the API would refuse.
"""

from __future__ import annotations

from typing import Any, Literal

from starlette.requests import Request

Kind = Literal["experiment", "model", "data", "server"]


class Forbidden(Exception):
    """The signed-in user may not read this; rendered as the 403 page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def user(request: Request) -> Any:
    return request.scope.get("conveyor.user")


def allowed(request: Request, kind: Kind, resource: str | None, level: str = "read") -> bool:
    policy = request.app.state.policy()
    return bool(policy.allows(user(request), kind, resource, level))


def require(request: Request, kind: Kind, resource: str | None, level: str = "read") -> None:
    """Raise :class:`Forbidden` unless the user may ``level`` the ``kind`` named ``resource``."""
    if not allowed(request, kind, resource, level):
        who = getattr(user(request), "name", None) or "anonymous"
        target = f"this {kind}" if resource is not None else f"{kind}s"
        raise Forbidden(f"user {who!r} may not {level} {target}")
