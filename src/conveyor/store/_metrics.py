"""Metrics: the full history of every key, plus a latest-value table for fast search."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, and_, func, or_, select
from sqlalchemy.engine import Connection

from conveyor.entities import Metric, now_ms
from conveyor.store._dialect import upsert
from conveyor.store._schema import BigInt, metadata

metrics = Table(
    "metrics",
    metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    # NULL stands for NaN: SQLite cannot store a NaN REAL.
    Column("value", Float(precision=53)),
    Column("step", BigInt, nullable=False),
    Column("timestamp", BigInt, nullable=False),
    Index("ix_metrics_run_id_key_step", "run_id", "key", "step"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float(precision=53)),
    Column("step", BigInt, nullable=False),
    Column("timestamp", BigInt, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

#: Batches of points already written, by the id the writer gave them: a batch retried after
#: a lost commit acknowledgement, or replayed from the spool, is not written twice.
metric_batches = Table(
    "metric_batches",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("points", Integer, nullable=False),
    Column("written_at", BigInt, nullable=False),
    Index("ix_metric_batches_run_id", "run_id"),
)

#: A point ready to be written: (run_id, key, value, step, timestamp).
Point = tuple[str, str, float, int, int]


def _stored(value: float) -> float | None:
    return None if math.isnan(value) else value


def _loaded(value: float | None) -> float:
    return math.nan if value is None else float(value)


_INSERT = metrics.insert()
_UPSERTS: dict[str, Any] = {}


def _newer(table: Any, excluded: Any) -> Any:
    return or_(
        excluded.step > table.c.step,
        and_(excluded.step == table.c.step, excluded.timestamp >= table.c.timestamp),
    )


def _upsert_latest(conn: Connection) -> Any:
    """The latest-value upsert, built once per dialect (statement building is costly)."""
    dialect = conn.dialect.name
    if dialect not in _UPSERTS:
        _UPSERTS[dialect] = upsert(conn, latest_metrics, ["run_id", "key"], ["value", "step", "timestamp"], where=_newer)
    return _UPSERTS[dialect]


class MetricRepo:
    """Write batches of points and read histories and latest values."""

    def write(self, conn: Connection, points: Sequence[Point]) -> None:
        """Append points to the history and move each latest value forward (by step, then time)."""
        if not points:
            return
        conn.execute(
            _INSERT,
            [
                {"run_id": r, "key": k, "value": _stored(v), "step": s, "timestamp": t}
                for r, k, v, s, t in points
            ],
        )
        newest = latest_points(points)
        conn.execute(
            _upsert_latest(conn),
            [
                {"run_id": r, "key": k, "value": _stored(v), "step": s, "timestamp": t}
                for r, k, v, s, t in newest.values()
            ],
        )

    def write_batch(self, conn: Connection, batch_id: str, points: Sequence[Point]) -> bool:
        """Write ``points`` once under ``batch_id``: False (and nothing written) when that batch
        is already in the store. Runs that no longer exist are skipped (purged meanwhile)."""
        if not points:
            return False
        if conn.execute(select(metric_batches.c.id).where(metric_batches.c.id == batch_id)).first() is not None:
            return False
        from conveyor.store._runs import runs

        run_ids = sorted({p[0] for p in points})
        alive = set(conn.execute(select(runs.c.id).where(runs.c.id.in_(run_ids))).scalars())
        kept = [p for p in points if p[0] in alive]
        if not kept:
            return False
        self.write(conn, kept)
        conn.execute(
            metric_batches.insert(),
            {"id": batch_id, "run_id": kept[0][0], "points": len(kept), "written_at": now_ms()},
        )
        return True

    def history(self, conn: Connection, run_id: str, key: str) -> list[Metric]:
        query = (
            select(metrics.c.key, metrics.c.value, metrics.c.step, metrics.c.timestamp)
            .where(metrics.c.run_id == run_id, metrics.c.key == key)
            .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.id)
        )
        return [Metric(k, _loaded(v), s, t) for k, v, s, t in conn.execute(query).all()]

    def keys(self, conn: Connection, run_id: str) -> list[str]:
        query = select(latest_metrics.c.key).where(latest_metrics.c.run_id == run_id).order_by(latest_metrics.c.key)
        return list(conn.execute(query).scalars())

    def latest_of(self, conn: Connection, run_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for start in range(0, len(run_ids), 500):
            chunk = list(run_ids[start : start + 500])
            query = select(latest_metrics.c.run_id, latest_metrics.c.key, latest_metrics.c.value).where(
                latest_metrics.c.run_id.in_(chunk)
            )
            for run_id, key, value in conn.execute(query).all():
                out.setdefault(run_id, {})[key] = _loaded(value)
        return out

    def count(self, conn: Connection, run_id: str | None = None) -> int:
        query = select(func.count()).select_from(metrics)
        if run_id is not None:
            query = query.where(metrics.c.run_id == run_id)
        return int(conn.execute(query).scalar_one())


def latest_points(points: Iterable[Point]) -> Mapping[tuple[str, str], Point]:
    newest: dict[tuple[str, str], Point] = {}
    for point in points:
        slot = (point[0], point[1])
        seen = newest.get(slot)
        if seen is None or (point[3], point[4]) >= (seen[3], seen[4]):
            newest[slot] = point
    return newest
