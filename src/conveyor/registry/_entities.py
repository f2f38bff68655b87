"""Value objects of the registry: model versions, registered models, audit events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Status:
    """Lifecycle of a version.

    ``PENDING_REGISTRATION`` while its package is being checked (a version left in it by a
    crash was never checked); ``READY`` once the package loaded and predicted its input
    example through its signature; ``FAILED_REGISTRATION`` when that failed (the reason is in
    ``status_message``). Only ``READY`` versions can hold aliases, be served, built or be
    ``latest``; ``ARCHIVED`` ones cannot until restored. Deleted versions leave the table;
    their events stay."""

    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    READY = "READY"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    ARCHIVED = "ARCHIVED"

    #: shown by ``models list``/``models versions`` without ``--all``
    VISIBLE = (READY, ARCHIVED)


@dataclass(frozen=True)
class ModelVersion:
    """Version ``version`` of registered model ``name``: a model package in the artifact store
    (``digest``), the run that produced it and what that run read."""

    name: str
    version: int
    source: str
    run_id: str | None
    digest: str
    size: int
    status: str
    description: str = ""
    git_commit: str | None = None
    data_versions: tuple[str, ...] = ()
    user: str = ""
    created_at: int = 0
    updated_at: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    status_message: str = ""

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "source": self.source,
            "run_id": self.run_id,
            "digest": self.digest,
            "size": self.size,
            "status": self.status,
            "status_message": self.status_message,
            "description": self.description,
            "git_commit": self.git_commit,
            "data_versions": list(self.data_versions),
            "user": self.user,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "tags": dict(self.tags),
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    description: str
    latest_version: int
    aliases: dict[str, int]
    created_at: int
    updated_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "latest_version": self.latest_version,
            "aliases": dict(self.aliases),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Event:
    """One entry of the audit trail: who did what, when, why, from → to.

    ``kind`` is ``register``, ``alias`` (set or moved), ``alias_deleted``, ``status``,
    ``deleted``, ``description``, ``promote_refused`` (gate failed) or ``promote_lost``
    (another promotion won the race)."""

    id: int
    name: str
    kind: str
    version: int | None
    alias: str | None
    from_value: str | None
    to_value: str | None
    user: str
    at: int
    reason: str
    forced: bool
    evaluation_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}
