"""Monitoring: reference summaries, evaluations, alerts, notifications, retraining triggers.

Every evaluation of a monitor is a row; an alert points at the evaluation that raised it;
a notification records each webhook delivery; a retraining trigger points at the alert
that caused it and records the run and the promotion decision — so "which alert caused
which run caused which promotion" is a join. ``lock_key`` holds the model name while a
retraining is in flight; its unique constraint makes "at most one at a time" hold on
SQLite and PostgreSQL alike (NULLs do not collide).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from conveyor.entities import now_ms
from conveyor.errors import Conflict, NotFound
from conveyor.store._dialect import upsert
from conveyor.store._schema import BigInt, metadata, register_digest_column

monitor_references = Table(
    "monitor_references",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("n_rows", BigInt, nullable=False),
    Column("n_columns", Integer, nullable=False),
    Column("created_at", BigInt, nullable=False),
    Index("ix_monitor_references_digest", "digest"),
)
register_digest_column(monitor_references, "digest")

monitor_evaluations = Table(
    "monitor_evaluations",
    metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("monitor", String(256), nullable=False),
    Column("model", String(256), nullable=False),
    Column("model_version", String(64), nullable=True),
    Column("created_at", BigInt, nullable=False),
    Column("window_start", BigInt, nullable=True),
    Column("window_end", BigInt, nullable=True),
    Column("status", String(16), nullable=False),
    Column("metrics", Text, nullable=False),
    Column("rules", Text, nullable=False),
    Column("report_digest", String(80), nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_monitor_evaluations_monitor_created_at", "monitor", "created_at"),
    Index("ix_monitor_evaluations_model_created_at", "model", "created_at"),
    Index("ix_monitor_evaluations_report_digest", "report_digest"),
)
register_digest_column(monitor_evaluations, "report_digest")

monitor_alerts = Table(
    "monitor_alerts",
    metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("evaluation_id", BigInt, ForeignKey("monitor_evaluations.id", ondelete="CASCADE"), nullable=True),
    Column("monitor", String(256), nullable=False),
    Column("model", String(256), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("rule", Text, nullable=False),
    Column("value", Float(precision=53), nullable=True),
    Column("message", Text, nullable=False),
    Column("created_at", BigInt, nullable=False),
    Index("ix_monitor_alerts_evaluation_id", "evaluation_id"),
    Index("ix_monitor_alerts_model_created_at", "model", "created_at"),
)

monitor_notifications = Table(
    "monitor_notifications",
    metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("alert_id", BigInt, ForeignKey("monitor_alerts.id", ondelete="CASCADE"), nullable=False),
    Column("target", String(1024), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", BigInt, nullable=False),
    Index("ix_monitor_notifications_alert_id", "alert_id"),
)

retrain_triggers = Table(
    "retrain_triggers",
    metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("model", String(256), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("alert_id", BigInt, ForeignKey("monitor_alerts.id", ondelete="SET NULL"), nullable=True),
    Column("status", String(16), nullable=False),
    Column("lock_key", String(256), nullable=True, unique=True),
    Column("run_id", String(64), nullable=True),
    Column("candidate_version", Integer, nullable=True),
    Column("decision", Text, nullable=False),
    Column("created_at", BigInt, nullable=False),
    Column("finished_at", BigInt, nullable=True),
    Index("ix_retrain_triggers_model_created_at", "model", "created_at"),
    Index("ix_retrain_triggers_alert_id", "alert_id"),
    Index("ix_retrain_triggers_run_id", "run_id"),
)


@dataclass(frozen=True)
class EvaluationRow:
    id: int
    monitor: str
    model: str
    model_version: str | None
    created_at: int
    window_start: int | None
    window_end: int | None
    status: str
    metrics: dict[str, Any]
    rules: list[dict[str, Any]]
    report_digest: str | None
    error: str | None


@dataclass(frozen=True)
class AlertRow:
    id: int
    evaluation_id: int | None
    monitor: str
    model: str
    kind: str
    rule: str
    value: float | None
    message: str
    created_at: int


@dataclass(frozen=True)
class TriggerRow:
    id: int
    model: str
    reason: str
    alert_id: int | None
    status: str
    run_id: str | None
    candidate_version: int | None
    decision: str
    created_at: int
    finished_at: int | None


class MonitoringRepo:
    """Rows of the monitoring aggregate; every method takes an open connection."""

    # -- reference summaries -------------------------------------------------------------------
    def put_reference(self, conn: Connection, key: str, digest: str, n_rows: int, n_columns: int) -> None:
        row = {"key": key, "digest": digest, "n_rows": n_rows, "n_columns": n_columns, "created_at": now_ms()}
        conn.execute(upsert(conn, monitor_references, ["key"], ["digest", "n_rows", "n_columns", "created_at"]), [row])

    def get_reference(self, conn: Connection, key: str) -> str | None:
        return conn.execute(select(monitor_references.c.digest).where(monitor_references.c.key == key)).scalar()

    # -- evaluations ---------------------------------------------------------------------------
    def add_evaluation(self, conn: Connection, **values: Any) -> int:
        values = {**values, "metrics": json.dumps(values.get("metrics", {}), default=str),
                  "rules": json.dumps(values.get("rules", []), default=str), "created_at": now_ms()}
        return _new_id(conn, insert(monitor_evaluations).values(**values))

    def evaluations(self, conn: Connection, *, monitor: str | None = None, model: str | None = None,
                    limit: int = 100) -> list[EvaluationRow]:
        query = select(monitor_evaluations).order_by(monitor_evaluations.c.created_at.desc(),
                                                     monitor_evaluations.c.id.desc()).limit(limit)
        if monitor is not None:
            query = query.where(monitor_evaluations.c.monitor == monitor)
        if model is not None:
            query = query.where(monitor_evaluations.c.model == model)
        return [_evaluation(r) for r in conn.execute(query).all()]

    # -- alerts and notifications --------------------------------------------------------------
    def add_alert(self, conn: Connection, **values: Any) -> int:
        values = {**values, "created_at": now_ms()}
        return _new_id(conn, insert(monitor_alerts).values(**values))

    def alerts(self, conn: Connection, *, model: str | None = None, limit: int = 100) -> list[AlertRow]:
        query = select(monitor_alerts).order_by(monitor_alerts.c.created_at.desc(), monitor_alerts.c.id.desc())
        if model is not None:
            query = query.where(monitor_alerts.c.model == model)
        return [AlertRow(**r._mapping) for r in conn.execute(query.limit(limit)).all()]

    def add_notification(self, conn: Connection, **values: Any) -> int:
        values = {**values, "created_at": now_ms()}
        return _new_id(conn, insert(monitor_notifications).values(**values))

    def notifications(self, conn: Connection, alert_id: int) -> list[dict[str, Any]]:
        query = select(monitor_notifications).where(monitor_notifications.c.alert_id == alert_id)
        return [dict(r._mapping) for r in conn.execute(query.order_by(monitor_notifications.c.id)).all()]

    # -- retraining ----------------------------------------------------------------------------
    def start_trigger(self, conn: Connection, model: str, reason: str, alert_id: int | None) -> int:
        """A running trigger holding the model's lock; ``Conflict`` if one is in flight."""
        values = {"model": model, "reason": reason, "alert_id": alert_id, "status": "running",
                  "lock_key": model, "decision": "", "created_at": now_ms()}
        try:
            with conn.begin_nested():
                return _new_id(conn, insert(retrain_triggers).values(**values))
        except IntegrityError as exc:
            raise Conflict(f"a retraining of {model!r} is already in flight",
                           hint="wait for it to finish (conveyor monitor triggers)") from exc

    def record_skip(self, conn: Connection, model: str, reason: str, alert_id: int | None, decision: str) -> int:
        values = {"model": model, "reason": reason, "alert_id": alert_id, "status": "skipped",
                  "decision": decision, "created_at": now_ms(), "finished_at": now_ms()}
        return _new_id(conn, insert(retrain_triggers).values(**values))

    def finish_trigger(self, conn: Connection, trigger_id: int, status: str, decision: str, *,
                       run_id: str | None = None, candidate_version: int | None = None) -> None:
        result = conn.execute(update(retrain_triggers).where(retrain_triggers.c.id == trigger_id).values(
            status=status, decision=decision, run_id=run_id, candidate_version=candidate_version,
            lock_key=None, finished_at=now_ms()))
        if not result.rowcount:
            raise NotFound("retraining trigger", trigger_id)

    def set_trigger_run(self, conn: Connection, trigger_id: int, run_id: str) -> None:
        conn.execute(update(retrain_triggers).where(retrain_triggers.c.id == trigger_id).values(run_id=run_id))

    def triggers(self, conn: Connection, *, model: str | None = None, limit: int = 100) -> list[TriggerRow]:
        query = select(retrain_triggers).order_by(retrain_triggers.c.created_at.desc(), retrain_triggers.c.id.desc())
        if model is not None:
            query = query.where(retrain_triggers.c.model == model)
        rows = conn.execute(query.limit(limit)).all()
        return [TriggerRow(**{k: v for k, v in r._mapping.items() if k != "lock_key"}) for r in rows]

    def get_trigger(self, conn: Connection, trigger_id: int) -> TriggerRow:
        row = conn.execute(select(retrain_triggers).where(retrain_triggers.c.id == trigger_id)).first()
        if row is None:
            raise NotFound("retraining trigger", trigger_id)
        return TriggerRow(**{k: v for k, v in row._mapping.items() if k != "lock_key"})

    def last_started(self, conn: Connection, model: str) -> int | None:
        """When the newest retraining of ``model`` (not a skipped one) started, in ms."""
        query = select(retrain_triggers.c.created_at).where(
            retrain_triggers.c.model == model, retrain_triggers.c.status != "skipped"
        ).order_by(retrain_triggers.c.created_at.desc()).limit(1)
        return conn.execute(query).scalar()


def _new_id(conn: Connection, statement: Any) -> int:
    key: Any = conn.execute(statement).inserted_primary_key
    return int(key[0])


def _evaluation(row: Any) -> EvaluationRow:
    m = dict(row._mapping)
    m["metrics"] = json.loads(m["metrics"])
    m["rules"] = json.loads(m["rules"])
    return EvaluationRow(**m)
