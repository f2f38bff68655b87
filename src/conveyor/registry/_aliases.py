"""Aliases and the audit trail: every alias move and status change is an event row with who,
when, why and from → to, so the holder of an alias at any past instant is one query."""

from __future__ import annotations

import getpass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from conveyor.entities import now_ms
from conveyor.errors import Conflict, InvalidInput, NotFound
from conveyor.registry._entities import Event, Status
from conveyor.store import model_aliases, registry_events, upsert, validate_key

#: Event kinds that change who holds an alias.
ALIAS_KINDS = ("alias", "rollback", "alias_deleted")
ANY = object()


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def parse_instant(value: str | int | datetime) -> int:
    """Milliseconds since the epoch for ``2026-10-01`` (the END of that day, UTC: "who was
    champion on that day" means at its close), an ISO datetime, or ms."""
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)
    text = str(value).strip()
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
            return int(day.timestamp() * 1000) + 86_400_000 - 1
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{value!r} is not a date or time", field="at", value=value,
            hint="write 2026-10-01 or 2026-10-01T12:00:00",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def check_alias(alias: str) -> str:
    """An alias name: a key that is not a number, ``latest``, and has no ``/`` or ``@``."""
    validate_key("alias", alias)
    if alias.isdigit() or alias == "latest" or "/" in alias or "@" in alias:
        raise InvalidInput(
            f"alias {alias!r} is not valid", field="alias", value=alias,
            hint="use a name such as champion or challenger (not a number, 'latest', '/' or '@')",
        )
    return alias


class AliasMixin:
    """Alias moves, rollback and history; mixed into ``Registry`` (needs store and repo)."""

    store: Any
    repo: Any

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        reason: str = "",
        user: str | None = None,
        expected: Any = ANY,
        forced: bool = False,
        evaluation_id: str | None = None,
        kind: str = "alias",
    ) -> Event:
        """Point ``alias`` at ``version`` and record who, when, why and from → to.

        ``expected`` (a version or ``None``) makes it a compare-and-set: when another process
        moved the alias meanwhile, the attempt is recorded as ``promote_lost`` and ``Conflict``
        is raised, so of two concurrent promotions exactly one wins."""
        check_alias(alias)

        def body(conn: Connection) -> list[Any]:
            """[True] when moved, [False, holder] when another process moved it meanwhile."""
            model = self.repo.model_row(conn, name, lock=True)
            row = self.repo.version_row(conn, model.id, name, int(version))
            if row.status != Status.READY:
                failed = row.status != Status.ARCHIVED  # FAILED_ or PENDING_REGISTRATION
                why = f" ({row.status_message})" if failed and row.status_message else ""
                raise Conflict(
                    f"{name}/{version} is {row.status}{why}; an alias needs a READY version",
                    hint=f"register a working package as a new version of {name}" if failed
                    else f"restore it first: `conveyor models archive {name}/{version} --restore`",
                )
            current = self.repo.alias_holder(conn, model.id, alias)
            who = user or current_user()
            if expected is not ANY and current != expected:
                self.repo.add_event(
                    conn, model.id, "promote_lost", version=int(version), alias=alias,
                    from_value=_str(current), to_value=str(version), user=who,
                    reason=f"expected {alias} on {_str(expected) or 'no version'}; {reason}".strip("; "),
                    forced=forced, evaluation_id=evaluation_id,
                )
                return [False, current]
            else:
                conn.execute(
                    upsert(conn, model_aliases, ["model_id", "alias"], ["version", "updated_at"]),
                    [{"model_id": model.id, "alias": alias, "version": int(version), "updated_at": now_ms()}],
                )
                self.repo.add_event(
                    conn, model.id, kind, version=int(version), alias=alias, from_value=_str(current),
                    to_value=str(version), user=who, reason=reason, forced=forced, evaluation_id=evaluation_id,
                )
                return [True]

        # once: a retry after a lost commit acknowledgement must neither record the move twice
        # nor mistake its own committed move for a concurrent one (a compare-and-set "lost")
        outcome = self.store.transaction(body, once=True, what=f"moving {name}@{alias}")
        if not outcome[0]:
            lost = outcome[1]
            raise Conflict(
                f"{name}@{alias} moved to {_str(lost) or 'nothing'} while this promotion of version "
                f"{version} was decided against {_str(expected) or 'no holder'}",
                hint="re-run the gate against the new holder, then promote again",
            )
        return self.history(name, alias=alias)[-1]

    def delete_alias(self, name: str, alias: str, *, reason: str = "", user: str | None = None) -> None:
        def body(conn: Connection) -> None:
            model = self.repo.model_row(conn, name, lock=True)
            current = self.repo.alias_holder(conn, model.id, alias)
            if current is None:
                raise NotFound("alias", f"{name}@{alias}")
            conn.execute(
                delete(model_aliases).where(model_aliases.c.model_id == model.id, model_aliases.c.alias == alias)
            )
            self.repo.add_event(
                conn, model.id, "alias_deleted", version=current, alias=alias, from_value=str(current),
                to_value=None, user=user or current_user(), reason=reason,
            )

        self.store.transaction(body, once=True, what=f"deleting {name}@{alias}")

    def previous_holder(self, name: str, alias: str = "champion") -> int | None:
        """The version ``rollback`` would restore: holders form a stack, a move pushes and a
        rollback pops, so repeated rollbacks walk further back instead of toggling."""
        stack: list[int | None] = []
        for event in self.history(name, alias=alias):
            if event.kind == "rollback":
                if stack:
                    stack.pop()
            elif event.kind == "alias":
                stack.append(int(event.to_value) if event.to_value else None)
            elif event.kind == "alias_deleted":
                stack.append(None)
        return stack[-2] if len(stack) >= 2 else None

    def rollback(self, name: str, alias: str = "champion", *, reason: str = "", user: str | None = None) -> Event:
        """Move ``alias`` back to its previous holder; recorded as a ``rollback`` event."""
        target = self.previous_holder(name, alias)
        if target is None:
            raise Conflict(
                f"{name}@{alias} has no previous holder to roll back to",
                hint=f"`conveyor models history {name} --alias {alias}` shows its moves",
            )
        current = self.store.query(
            lambda conn: self.repo.alias_holder(conn, self.repo.model_row(conn, name).id, alias),
            what=f"reading {name}@{alias}")
        return self.set_alias(
            name, alias, target, reason=reason or "rollback", user=user, expected=current, kind="rollback"
        )

    def history(
        self, name: str, *, alias: str | None = None, until: str | int | datetime | None = None
    ) -> list[Event]:
        """Every event of model ``name`` (or of one alias), oldest first, up to ``until``."""

        def read(conn: Connection) -> list[Any]:
            model = self.repo.model_row(conn, name)
            query = select(registry_events).where(registry_events.c.model_id == model.id)
            if alias is not None:
                query = query.where(registry_events.c.alias == alias)
            if until is not None:
                query = query.where(registry_events.c.at <= parse_instant(until))
            return list(conn.execute(query.order_by(registry_events.c.at, registry_events.c.id)).all())

        rows = self.store.query(read, what=f"reading the history of {name!r}")
        return [
            Event(
                r.id, name, r.kind, r.version, r.alias, r.from_value, r.to_value, r.user, r.at,
                r.reason, bool(r.forced), r.evaluation_id,
            )
            for r in rows
        ]

    def aliases_at(self, name: str, at: str | int | datetime) -> dict[str, int]:
        """Which version held each alias at instant ``at`` (a date means the end of that day)."""
        holders: dict[str, int | None] = {}
        for event in self.history(name, until=at):
            if event.kind in ALIAS_KINDS and event.alias:
                holders[event.alias] = int(event.to_value) if event.to_value else None
        return {a: v for a, v in sorted(holders.items()) if v is not None}

    def record_attempt(self, name: str, kind: str, **fields: Any) -> None:
        """Record an event that changed nothing (a refused promotion) for the audit trail."""
        who = fields.pop("user", None) or current_user()

        def body(conn: Connection) -> None:
            model = self.repo.model_row(conn, name)
            self.repo.add_event(conn, model.id, kind, user=who, **fields)

        self.store.transaction(body, once=True, what=f"recording a {kind} of {name}")


def _str(value: object) -> str | None:
    return None if value is None or value is ANY else str(value)


__all__ = ["ANY", "AliasMixin", "check_alias", "current_user", "parse_instant"]
