"""Promotion: an alias moves only for a version whose latest gate evaluation passed
against the current holder, or when forced with a reason; every attempt is recorded."""

from __future__ import annotations

from typing import Any

from conveyor.errors import Conflict, InvalidInput
from conveyor.gates._evaluate import evaluations
from conveyor.registry import Event, Registry


def promote(
    name: str,
    version: int,
    alias: str = "champion",
    *,
    force: bool = False,
    reason: str = "",
    registry: Registry | None = None,
    user: str | None = None,
) -> Event:
    """Move ``alias`` to ``version`` when its latest gate evaluation passed.

    The move is a compare-and-set against the champion the gate compared with: if another
    promotion won meanwhile, this one is recorded as lost and ``Conflict`` is raised. A
    version without a passing evaluation is refused (recorded, ``Conflict``) unless
    ``force=True`` with a ``reason``, which is recorded as forced.

    Example::

        promote("churn", 4)                                   # gate passed → champion
        promote("churn", 3, force=True, reason="hotfix #812")  # recorded as forced
    """
    if force and not (reason or "").strip():
        raise InvalidInput(
            "a forced promotion needs a reason", field="reason", value=reason,
            hint='say why, e.g. force=True, reason="hotfix for incident 812" (CLI: --force --reason "…")',
        )
    if registry is None:
        from conveyor.registry import get_registry

        registry = get_registry()
    from conveyor.registry._remote import RemoteRegistry

    if isinstance(registry, RemoteRegistry):  # remote mode: the server decides, in one transaction
        return registry.promote(name, version, alias, force=force, reason=reason, user=user)
    registry.get_version(name, version)  # NotFound names the version
    found = evaluations(registry, name, version)
    latest = found[0] if found else None
    if force:
        return registry.set_alias(
            name, alias, version, reason=reason, user=user, forced=True,
            evaluation_id=latest.id if latest else None,
        )
    if latest is None or not latest.passed:
        why = (
            "no gate evaluation" if latest is None
            else "gate failed: " + "; ".join(f"{c.name} ({c.summary})" for c in latest.failures)
        )
        registry.record_attempt(
            name, "promote_refused", version=version, alias=alias, to_value=str(version), reason=why,
            user=user, evaluation_id=latest.id if latest else None,
        )
        raise Conflict(
            f"promotion of {name}/{version} to {alias} refused: {why}",
            hint="`conveyor ci check` evaluates the gate; force=True with a reason overrides it, recorded",
        )
    expected: Any = latest.champion_version if alias == "champion" else _any()
    return registry.set_alias(
        name, alias, version, user=user, expected=expected, evaluation_id=latest.id,
        reason=reason or f"gate {latest.gate!r} passed (evaluation {latest.id})",
    )


def _any() -> Any:
    from conveyor.registry._aliases import ANY

    return ANY
