"""Data sets and their versions: name → numbered versions → a digest in the artifact store.

A version's ``digest`` names a file object (``kind`` file/table) or a manifest
(``kind`` folder). Profiles and schemas of tables are JSON text kept with the version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from conveyor.errors import Conflict, NotFound
from conveyor.store._schema import BigInt, metadata, register_digest_column

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", BigInt, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("dataset_id", Integer, ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("format", String(16), nullable=True),
    Column("size", BigInt, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("profile", Text, nullable=True),
    Column("created_at", BigInt, nullable=False),
    Column("run_id", String(32), nullable=True),
    Index("ix_dataset_versions_digest", "digest"),
)
register_digest_column(dataset_versions, "digest", manifest=lambda t: t.c.kind == "folder")


@dataclass(frozen=True)
class VersionRow:
    """One stored version, as the repository returns it (``profile`` is still JSON text)."""

    name: str
    version: int
    digest: str
    kind: str
    format: str | None
    size: int
    file_count: int
    source: str
    profile: str | None
    created_at: int
    run_id: str | None


def _row(name: str, r: Any) -> VersionRow:
    return VersionRow(
        name, r.version, r.digest, r.kind, r.format, r.size, r.file_count, r.source, r.profile,
        r.created_at, r.run_id,
    )


class DatasetRepo:
    """Queries over ``datasets`` and ``dataset_versions``; every method takes a connection."""

    def dataset_id(self, conn: Connection, name: str, *, create_at: int | None = None) -> int | None:
        found = conn.execute(select(datasets.c.id).where(datasets.c.name == name)).scalar()
        if found is not None or create_at is None:
            return found
        try:
            with conn.begin_nested():
                return int(conn.execute(datasets.insert().values(name=name, created_at=create_at)).inserted_primary_key[0])  # type: ignore[index]
        except IntegrityError as exc:  # created meanwhile by another writer
            raise Conflict(f"data set {name!r} was created concurrently", hint="retry") from exc

    def latest(self, conn: Connection, name: str) -> VersionRow | None:
        ds = self.dataset_id(conn, name)
        if ds is None:
            return None
        query = select(dataset_versions).where(dataset_versions.c.dataset_id == ds)
        row = conn.execute(query.order_by(dataset_versions.c.version.desc()).limit(1)).first()
        return None if row is None else _row(name, row)

    def get(self, conn: Connection, name: str, version: int | None) -> VersionRow:
        """A version (``None`` = latest); ``NotFound`` naming the versions that exist."""
        if version is None:
            found = self.latest(conn, name)
            if found is None:
                raise NotFound("data set", name, hint="`conveyor data list` shows the data sets")
            return found
        ds = self.dataset_id(conn, name)
        if ds is None:
            raise NotFound("data set", name, hint="`conveyor data list` shows the data sets")
        row = conn.execute(
            select(dataset_versions).where(dataset_versions.c.dataset_id == ds, dataset_versions.c.version == version)
        ).first()
        if row is None:
            last = conn.execute(select(func.max(dataset_versions.c.version)).where(dataset_versions.c.dataset_id == ds)).scalar()
            raise NotFound("data set version", f"{name}@{version}", hint=f"{name} has versions 1..{last or 0}")
        return _row(name, row)

    def insert(self, conn: Connection, dataset_id: int, version: int, values: dict[str, Any]) -> None:
        try:
            with conn.begin_nested():
                conn.execute(dataset_versions.insert().values(dataset_id=dataset_id, version=version, **values))
        except IntegrityError as exc:  # another writer took this number first (PostgreSQL)
            raise Conflict(f"version {version} was added concurrently", hint="retry") from exc

    def versions(self, conn: Connection, name: str) -> list[VersionRow]:
        ds = self.dataset_id(conn, name)
        if ds is None:
            raise NotFound("data set", name, hint="`conveyor data list` shows the data sets")
        rows = conn.execute(
            select(dataset_versions).where(dataset_versions.c.dataset_id == ds).order_by(dataset_versions.c.version)
        ).all()
        return [_row(name, r) for r in rows]

    def list_latest(self, conn: Connection) -> list[VersionRow]:
        """The latest version of every data set, by name."""
        newest = (
            select(dataset_versions.c.dataset_id, func.max(dataset_versions.c.version).label("v"))
            .group_by(dataset_versions.c.dataset_id)
            .subquery()
        )
        query = (
            select(datasets.c.name, dataset_versions)
            .join(newest, newest.c.dataset_id == datasets.c.id)
            .join(
                dataset_versions,
                (dataset_versions.c.dataset_id == newest.c.dataset_id) & (dataset_versions.c.version == newest.c.v),
            )
            .order_by(datasets.c.name)
        )
        return [_row(r.name, r) for r in conn.execute(query).all()]
