"""What every ``/api/v1`` handler needs: the tracker, the caller and the permission check.

``user(request)`` is the principal that the server's authentication middleware put in the
ASGI scope (``scope["conveyor.user"]``, a ``conveyor.server.Principal`` with ``name`` and
``is_admin``), or None when authentication is off (loopback without users). ``authorize``
asks the app's policy: ``AllowAll`` when off, else ``conveyor.server.RolePolicy`` (roles per
experiment — by id or name —, registered model and data set — by name —, admins, the
default role). A handler that lists filters with ``readable``, one that creates calls
``created`` (the creator manages it), and a write records ``user_name``.
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

    def readable(self, user: Any, kind: Kind, resources: Any, level: Level = "read") -> set[str]:
        return {str(r) for r in resources}

    def created(self, user: Any, kind: Kind, resource: str) -> None:
        return None


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


def user_name(request: Request) -> str | None:
    """The authenticated caller's name, to record on writes (None when authentication is off)."""
    return getattr(user(request), "name", None)


def readable(request: Request, kind: Kind, resources: Any) -> set[str]:
    """Which of ``resources`` (experiment ids, model or data set names, as strings) the caller
    may read: filter lists and searches with it."""
    return set(request.app.state.policy.readable(user(request), kind, [str(r) for r in resources]))


def created(request: Request, kind: Kind, resource: str) -> None:
    """Tell the policy the caller created ``resource`` (the creator manages it)."""
    request.app.state.policy.created(user(request), kind, str(resource))
