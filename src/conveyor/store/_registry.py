"""The model registry aggregate: registered models, their versions, aliases, tags, the
audit trail of every alias move and status change, and stored gate evaluations.

Version numbers come from a per-model counter bumped with ``UPDATE … SET last_version =
last_version + 1`` while the model row is locked (``SELECT … FOR UPDATE`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite), so concurrent registrations never share or reuse a number.
Events do not cascade from versions: deleting a version keeps its history.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.engine import Connection, Row

from conveyor.entities import now_ms
from conveyor.errors import NotFound
from conveyor.store._dialect import insert_ignore
from conveyor.store._schema import BigInt, metadata, register_digest_column

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("last_version", Integer, nullable=False, default=0),
    Column("created_at", BigInt, nullable=False),
    Column("updated_at", BigInt, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    # No foreign key to runs: purging a run must not erase the registry's record of it.
    Column("run_id", String(32)),
    Column("digest", String(80), nullable=False),
    Column("is_dir", Boolean, nullable=False, default=True),
    Column("size", BigInt, nullable=False, default=0),
    # PENDING_REGISTRATION | READY | FAILED_REGISTRATION | ARCHIVED (conveyor.registry.Status)
    Column("status", String(32), nullable=False),
    # why a version is FAILED_REGISTRATION (the load or signature error); null otherwise
    Column("status_message", Text),
    Column("description", Text, nullable=False, default=""),
    Column("git_commit", String(64)),
    Column("data_versions", Text, nullable=False, default="[]"),
    Column("user", String(256), nullable=False, default=""),
    Column("created_at", BigInt, nullable=False),
    Column("updated_at", BigInt, nullable=False),
    Index("ix_model_versions_run_id", "run_id"),
    Index("ix_model_versions_digest", "digest"),
)
register_digest_column(model_versions, "digest", manifest=lambda t: t.c.is_dir)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True),
    Column("alias", String(256), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", BigInt, nullable=False),
    Index("ix_model_aliases_model_id_version", "model_id", "version"),
)

registry_events = Table(
    "registry_events",
    metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("registered_models.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer),
    # register | alias | alias_deleted | status | deleted | promote_refused | promote_lost
    Column("kind", String(32), nullable=False),
    Column("alias", String(256)),
    Column("from_value", String(256)),
    Column("to_value", String(256)),
    Column("user", String(256), nullable=False, default=""),
    Column("at", BigInt, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("forced", Boolean, nullable=False, default=False),
    Column("evaluation_id", String(32)),
    Index("ix_registry_events_model_id_at", "model_id", "at"),
    Index("ix_registry_events_model_id_alias_at", "model_id", "alias", "at"),
)

gate_evaluations = Table(
    "gate_evaluations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model_id", Integer, ForeignKey("registered_models.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("gate", String(256), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("champion_version", Integer),
    Column("dataset", Text, nullable=False, default=""),
    Column("n_rows", BigInt, nullable=False, default=0),
    Column("evidence", Text, nullable=False),  # JSON: every check with its evidence
    Column("user", String(256), nullable=False, default=""),
    Column("created_at", BigInt, nullable=False),
    Index("ix_gate_evaluations_model_id_version_created_at", "model_id", "version", "created_at"),
)


class RegistryRepo:
    """Rows of the registry; the domain rules live in ``conveyor.registry``."""

    def model_row(self, conn: Connection, name: str, *, lock: bool = False) -> Row[Any]:
        query = select(registered_models).where(registered_models.c.name == name)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound("registered model", name, hint="`conveyor models list` shows the registered models")
        return row

    def ensure_model(self, conn: Connection, name: str) -> None:
        now = now_ms()
        conn.execute(
            insert_ignore(conn, registered_models, ["name"]),
            [{"name": name, "description": "", "last_version": 0, "created_at": now, "updated_at": now}],
        )

    def next_version(self, conn: Connection, model_id: int) -> int:
        conn.execute(
            update(registered_models)
            .where(registered_models.c.id == model_id)
            .values(last_version=registered_models.c.last_version + 1, updated_at=now_ms())
        )
        return int(
            conn.execute(
                select(registered_models.c.last_version).where(registered_models.c.id == model_id)
            ).scalar_one()
        )

    def version_row(self, conn: Connection, model_id: int, name: str, version: int) -> Row[Any]:
        row = conn.execute(
            select(model_versions).where(model_versions.c.model_id == model_id, model_versions.c.version == version)
        ).first()
        if row is None:
            raise NotFound(
                "model version", f"{name}/{version}", hint=f"`conveyor models versions {name}` lists them"
            )
        return row

    def alias_holder(self, conn: Connection, model_id: int, alias: str) -> int | None:
        value = conn.execute(
            select(model_aliases.c.version).where(model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)
        ).scalar()
        return None if value is None else int(value)

    def aliases_of(self, conn: Connection, model_id: int) -> dict[str, int]:
        rows = conn.execute(
            select(model_aliases.c.alias, model_aliases.c.version).where(model_aliases.c.model_id == model_id)
        ).all()
        return {a: int(v) for a, v in rows}

    def tags_of(self, conn: Connection, model_id: int, version: int) -> dict[str, str]:
        rows = conn.execute(
            select(model_version_tags.c.key, model_version_tags.c.value).where(
                model_version_tags.c.model_id == model_id, model_version_tags.c.version == version
            )
        ).all()
        return {k: v for k, v in rows}

    def add_event(self, conn: Connection, model_id: int, kind: str, **fields: Any) -> None:
        conn.execute(registry_events.insert().values(model_id=model_id, kind=kind, at=fields.pop("at", None) or now_ms(), **fields))


__all__ = [
    "RegistryRepo",
    "gate_evaluations",
    "model_aliases",
    "model_version_tags",
    "model_versions",
    "registered_models",
    "registry_events",
]
