"""The index of the serving logs: one row per Parquet object in the artifact store.

The prediction log and the feedback (ground-truth labels) are written by
``conveyor.serving`` as Parquet objects, partitioned by model, version and hour; this
table records where each object is, what it covers and how many rows it holds, so that
monitoring can find the files for a model and a time range without listing storage.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Index, Integer, String, Table, insert, select
from sqlalchemy.engine import Connection

from conveyor.store._schema import BigInt, metadata, register_digest_column

#: what a log file holds
KINDS = ("predictions", "feedback")

serving_log_files = Table(
    "serving_log_files",
    metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("model", String(256), nullable=False),
    Column("version", String(64), nullable=False),  # "" for feedback (labels name request ids)
    Column("hour", BigInt, nullable=False),  # start of the hour, ms since the epoch (UTC)
    Column("digest", String(80), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("size", BigInt, nullable=False),
    Column("first_ts", BigInt, nullable=False),
    Column("last_ts", BigInt, nullable=False),
    Column("created_at", BigInt, nullable=False),
    Index("ix_serving_log_files_kind_model_version_hour", "kind", "model", "version", "hour"),
    Index("ix_serving_log_files_digest", "digest"),
)
register_digest_column(serving_log_files, "digest", manifest=False)


@dataclass(frozen=True, slots=True)
class LogFile:
    """One Parquet object of the prediction log (``kind="predictions"``) or the feedback."""

    kind: str
    model: str
    version: str
    hour: int
    digest: str
    rows: int
    size: int
    first_ts: int
    last_ts: int
    created_at: int


class ServingLogRepo:
    """Record and find serving log files."""

    def record(self, conn: Connection, files: list[LogFile]) -> None:
        if files:
            conn.execute(insert(serving_log_files), [_row(f) for f in files])

    def find(
        self,
        conn: Connection,
        kind: str,
        model: str,
        version: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> list[LogFile]:
        """Files of ``model`` (and ``version``) that may hold rows in [since, until)."""
        t = serving_log_files
        query = select(t).where(t.c.kind == kind, t.c.model == model)
        if version is not None:
            query = query.where(t.c.version == version)
        if since_ms is not None:
            query = query.where(t.c.hour > since_ms - 3_600_000, t.c.last_ts >= since_ms)
        if until_ms is not None:
            query = query.where(t.c.hour < until_ms, t.c.first_ts < until_ms)
        query = query.order_by(t.c.hour, t.c.id)
        return [LogFile(**{k: getattr(r, k) for k in LogFile.__slots__}) for r in conn.execute(query).all()]


def _row(f: LogFile) -> dict[str, object]:
    return {k: getattr(f, k) for k in LogFile.__slots__}
