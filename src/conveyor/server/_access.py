"""Who may do what: the role policy of the server, and the caller of the current request.

:class:`RolePolicy` is the ``Policy`` of ``conveyor.server.api._deps`` (``allows(user, kind,
resource, level)``) and guards the MLflow-compatible routes too:

- an admin may do everything; a disabled user or a revoked token never gets this far;
- on an experiment (resource: its id, or its name), a registered model (its name) or a data
  set (its name), a user has the level of their role there, else ``[server] default_role``;
- ``resource=None`` (create a new one, or list: lists are filtered) is open to every user;
- kind ``server`` (users, roles, server-wide settings) is admins' for edit and manage.

The MLflow handlers are plain functions ``(tracker, fields)``; :func:`call` runs one with the
request's :class:`Access` in a context variable, so a search can keep only what the caller
may read (:func:`readable`) and a write can record who made it (:func:`user_name`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from conveyor.errors import ConveyorError
from conveyor.server._errors import ApiError
from conveyor.server._users import LEVELS, Principal, Users


class RolePolicy:
    """Roles per experiment, registered model and data set; admins; a default role."""

    def __init__(self, users: Users, tracker: Any, default_role: str = "read") -> None:
        self.users = users
        self.tracker = tracker
        self.default = LEVELS.get(default_role, 0)

    def _key(self, kind: str, resource: str) -> str:
        if kind == "experiment" and not resource.isdigit():
            try:  # a name: roles are kept by id, which survives a rename
                return str(self.tracker.get_experiment(resource).id)
            except (KeyError, ConveyorError):  # unknown: the default role, and the handler's 404
                return resource
        return resource

    def allows(self, user: Any, kind: str, resource: str | None, level: str) -> bool:
        if user is None:
            return False
        if getattr(user, "is_admin", False):
            return True
        if kind == "server":
            return level == "read"
        if resource is None:
            return True
        key = self._key(kind, str(resource))
        have = self.users.levels_of(user.name, kind, [key]).get(key)
        return (LEVELS[have] if have else self.default) >= LEVELS[level]

    def readable(self, user: Any, kind: str, resources: Iterable[str], level: str = "read") -> set[str]:
        """Which of ``resources`` (ids of experiments, names of models) ``user`` may ``level``."""
        wanted = [str(r) for r in resources]
        if user is None:
            return set()
        if getattr(user, "is_admin", False):
            return set(wanted)
        explicit = self.users.levels_of(user.name, kind)
        need = LEVELS[level]
        return {r for r in wanted if (LEVELS[explicit[r]] if r in explicit else self.default) >= need}

    def created(self, user: Any, kind: str, resource: str) -> None:
        """The creator of a resource manages it."""
        if user is not None:
            self.users.grant(user.name, kind, str(resource), "manage", by=user.name)


@dataclass(frozen=True)
class Access:
    """The caller of one request and the policy that judges them."""

    user: Principal | None
    policy: Any

    @property
    def enforced(self) -> bool:
        return isinstance(self.policy, RolePolicy)

    def allows(self, kind: str, resource: Any, level: str) -> bool:
        if self.policy is None:  # authentication off: loopback without users
            return True
        return bool(self.policy.allows(self.user, kind, None if resource is None else str(resource), level))

    def require(self, kind: str, resource: Any, level: str) -> None:
        if not self.allows(kind, resource, level):
            who = self.user.name if self.user is not None else "anonymous"
            what = f"{kind} {resource}" if resource is not None else f"{kind}s"
            raise ApiError("PERMISSION_DENIED", f"User '{who}' may not {level} {what}: ask a user who manages it "
                           f"(or an admin) for the {level} role (`conveyor roles grant`).")

    def readable(self, kind: str, resources: Iterable[Any]) -> set[str]:
        wanted = [str(r) for r in resources]
        if not self.enforced:
            return set(wanted)
        return set(self.policy.readable(self.user, kind, wanted))

    def created(self, kind: str, resource: Any) -> None:
        if self.enforced:
            self.policy.created(self.user, kind, str(resource))


OPEN = Access(None, None)
_current: ContextVar[Access] = ContextVar("conveyor_server_access", default=OPEN)


def current() -> Access:
    return _current.get()


def user_name() -> str | None:
    """The authenticated caller's name (None when authentication is off)."""
    user = _current.get().user
    return user.name if user is not None else None


def readable(kind: str, resources: Iterable[Any]) -> set[str]:
    return _current.get().readable(kind, resources)


def of(request: Any) -> Access:
    """The caller of a request (put in the scope by the authentication middleware) and the
    app's policy (none when authentication is off)."""
    return Access(request.scope.get("conveyor.user"), getattr(request.app.state, "policy", None))


def call(access: Access, function: Callable[..., Any], *args: Any) -> Any:
    """Run ``function(*args)`` (on a worker thread) with ``access`` as the current caller."""
    token = _current.set(access)
    try:
        return function(*args)
    finally:
        _current.reset(token)
