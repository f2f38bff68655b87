"""What every ``/api/v1`` handler needs: the tracker, the caller and the permission check.

``user(request)`` is the principal that the server's authentication middleware put in the
ASGI scope (``scope["conveyor.user"]``), or None when authentication is off (loopback
without configuration). ``authorize`` asks the app's policy; the default allows everything.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from fastapi import Request

from conveyor.server.api._errors import ApiV1Error

Kind = Literal["experiment", "model", "data", "server"]
Level = Literal["read", "edit", "manage"]


class Policy(Protocol):
    def allows(self, user: Any, kind: Kind, resource: str | None, level: Level) -> bool: ...


class AllowAll:
    """The policy when authentication is off: every caller may do everything."""

    def allows(self, user: Any, kind: Kind, resource: str | None, level: Level) -> bool:
        return True


def tracker(request: Request) -> Any:
    return request.app.state.tracker


def user(request: Request) -> Any:
    return request.scope.get("conveyor.user")


def authorize(request: Request, kind: Kind, resource: str | None, level: Level) -> None:
    """Raise a 403 unless the caller may ``level`` the ``kind`` named ``resource``
    (None: the kind as a whole, e.g. creating a new experiment)."""
    who = user(request)
    if not request.app.state.policy.allows(who, kind, resource, level):
        name = getattr(who, "name", None) or "anonymous"
        target = f"{kind} {resource!r}" if resource is not None else f"{kind}s"
        raise ApiV1Error("FORBIDDEN", f"user {name!r} may not {level} {target}")
