"""The index of artifacts logged to runs: run + relative path → digest in the artifact store."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Boolean, Column, ForeignKey, Index, String, Table, BigInteger, delete, select
from sqlalchemy.engine import Connection

from conveyor.entities import Artifact
from conveyor.errors import NotFound
from conveyor.store._dialect import upsert
from conveyor.store._schema import metadata, register_digest_column

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("media_type", String(128), nullable=False),
    Column("is_dir", Boolean, nullable=False, default=False),
    Index("ix_artifacts_digest", "digest"),
)
register_digest_column(artifacts, "digest", manifest=lambda t: t.c.is_dir)


class ArtifactRepo:
    """Record and find run artifacts. Paths are validated by the caller (tracking)."""

    def record(self, conn: Connection, artifact: Artifact) -> None:
        """Insert or replace the artifact at ``artifact.path`` (re-logging a path overwrites it)."""
        row = {
            "run_id": artifact.run_id,
            "path": artifact.path,
            "digest": artifact.digest,
            "size": artifact.size,
            "media_type": artifact.media_type,
            "is_dir": artifact.is_dir,
        }
        conn.execute(
            upsert(conn, artifacts, ["run_id", "path"], ["digest", "size", "media_type", "is_dir"]), [row]
        )

    def list(self, conn: Connection, run_id: str, prefix: str = "") -> list[Artifact]:
        query = select(artifacts).where(artifacts.c.run_id == run_id).order_by(artifacts.c.path)
        if prefix:
            query = query.where(artifacts.c.path.startswith(prefix.rstrip("/"), autoescape=True))
        return [_entity(r) for r in conn.execute(query).all()]

    def get(self, conn: Connection, run_id: str, path: str) -> Artifact:
        row = conn.execute(
            select(artifacts).where(artifacts.c.run_id == run_id, artifacts.c.path == path)
        ).first()
        if row is None:
            raise NotFound("artifact", f"{run_id}/{path}", hint=f"`conveyor artifacts list {run_id}` shows them")
        return _entity(row)

    def remove(self, conn: Connection, run_id: str, paths: Sequence[str]) -> None:
        conn.execute(delete(artifacts).where(artifacts.c.run_id == run_id, artifacts.c.path.in_(list(paths))))


def _entity(row: object) -> Artifact:
    r = row  # a Row with the artifacts columns
    return Artifact(r.run_id, r.path, r.digest, r.size, r.media_type, bool(r.is_dir))  # type: ignore[attr-defined]
