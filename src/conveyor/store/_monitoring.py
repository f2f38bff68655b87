"""Monitoring: reference summaries, evaluations, alerts, notifications, retraining triggers.

Every evaluation of a monitor is a row; an alert points at the evaluation that raised it;
a notification records each webhook delivery; a retraining trigger points at the alert
that caused it and records the run and the promotion decision — so "which alert caused
which run caused which promotion" is a join. ``lock_key`` holds the model name while a
retraining is in flight; its unique constraint makes "at most one at a time" hold on
SQLite and PostgreSQL alike (NULLs do not collide).

The lock is a lease: the row names its ``holder`` (host:pid) and ``lease_until``, which
the holder keeps pushing forward with heartbeats while the retraining runs. A holder
that died (``os._exit``, SIGKILL, a lost machine) stops heartbeating; once its lease has
passed, the next trigger marks the row ``abandoned`` and takes the lock, and
``unlock`` does the same by hand without waiting.
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
    Column("holder", String(256), nullable=True),
    Column("lease_until", BigInt, nullable=True),
    Column("heartbeat_at", BigInt, nullable=True),
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
    holder: str | None = None
    lease_until: int | None = None
    heartbeat_at: int | None = None


#: Statuses of a retraining that ended without a candidate decision (they count for the backoff).
FAILED = ("failed", "abandoned")
#: Statuses of a retraining that completed (they start the cool-down).
COMPLETED = ("promoted", "rejected")


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
    def start_trigger(self, conn: Connection, model: str, reason: str, alert_id: int | None, *,
                      holder: str | None = None, lease_ms: int = 300_000) -> tuple[int, TriggerRow | None]:
        """A running trigger holding the model's lease, and the expired one it replaced (if any).

        ``Conflict`` (naming the holder) while another trigger's lease is live.
        """
        now = now_ms()
        abandoned = self.reap_expired(conn, model)
        held = self.in_flight(conn, model)
        if held is not None:
            raise Conflict(f"a retraining of {model!r} is already in flight: {describe_lease(held, now)}",
                           hint=f"wait for it (conveyor monitor history --show triggers), or if its holder "
                                f"is gone: conveyor monitor unlock {model}")
        values = {"model": model, "reason": reason, "alert_id": alert_id, "status": "running",
                  "lock_key": model, "decision": "", "created_at": now, "holder": holder,
                  "lease_until": now + lease_ms, "heartbeat_at": now}
        try:
            with conn.begin_nested():
                return _new_id(conn, insert(retrain_triggers).values(**values)), abandoned
        except IntegrityError as exc:  # another process took the lease between our read and insert
            raise Conflict(f"a retraining of {model!r} is already in flight (it started a moment ago)",
                           hint="wait for it to finish (conveyor monitor history --show triggers)") from exc

    def reap_expired(self, conn: Connection, model: str) -> TriggerRow | None:
        """Mark ``model``'s lock holder ``abandoned`` if its lease has expired; return that row."""
        held = self.in_flight(conn, model)
        now = now_ms()
        if held is None or (held.lease_until is not None and held.lease_until > now):
            return None
        return self._abandon(conn, held, f"abandoned: its holder {held.holder or 'unknown'} stopped "
                                         f"heartbeating and the lease expired {_ago(held.lease_until, now)}")

    def heartbeat(self, conn: Connection, trigger_id: int, lease_ms: int) -> bool:
        """Extend a running trigger's lease; False when it no longer holds it (unlocked or expired)."""
        now = now_ms()
        result = conn.execute(update(retrain_triggers).where(
            retrain_triggers.c.id == trigger_id, retrain_triggers.c.status == "running",
            retrain_triggers.c.lock_key.is_not(None)).values(lease_until=now + lease_ms, heartbeat_at=now))
        return bool(result.rowcount)

    def in_flight(self, conn: Connection, model: str) -> TriggerRow | None:
        """The trigger holding ``model``'s lock (live or expired), if any."""
        row = conn.execute(select(retrain_triggers).where(retrain_triggers.c.lock_key == model)).first()
        return None if row is None else _trigger(row)

    def unlock(self, conn: Connection, model: str, by: str) -> TriggerRow:
        """Release ``model``'s lock by hand: the running trigger becomes ``abandoned``."""
        held = self.in_flight(conn, model)
        if held is None:
            raise NotFound("retraining lock", model, hint="no retraining of this model is in flight")
        return self._abandon(conn, held, f"abandoned: unlocked by hand by {by} "
                                         f"(it was {describe_lease(held, now_ms())})")

    def _abandon(self, conn: Connection, held: TriggerRow, decision: str) -> TriggerRow:
        conn.execute(update(retrain_triggers).where(retrain_triggers.c.id == held.id).values(
            status="abandoned", decision=decision, lock_key=None, finished_at=now_ms()))
        return self.get_trigger(conn, held.id)

    def record_skip(self, conn: Connection, model: str, reason: str, alert_id: int | None, decision: str) -> int:
        values = {"model": model, "reason": reason, "alert_id": alert_id, "status": "skipped",
                  "decision": decision, "created_at": now_ms(), "finished_at": now_ms()}
        return _new_id(conn, insert(retrain_triggers).values(**values))

    def finish_trigger(self, conn: Connection, trigger_id: int, status: str, decision: str, *,
                       run_id: str | None = None, candidate_version: int | None = None) -> None:
        values: dict[str, Any] = {"status": status, "decision": decision, "candidate_version": candidate_version,
                                  "lock_key": None, "finished_at": now_ms()}
        if run_id is not None:  # keep a run id recorded earlier (set_trigger_run)
            values["run_id"] = run_id
        result = conn.execute(update(retrain_triggers).where(retrain_triggers.c.id == trigger_id).values(**values))
        if not result.rowcount:
            raise NotFound("retraining trigger", trigger_id)

    def set_trigger_run(self, conn: Connection, trigger_id: int, run_id: str) -> None:
        conn.execute(update(retrain_triggers).where(retrain_triggers.c.id == trigger_id).values(run_id=run_id))

    def triggers(self, conn: Connection, *, model: str | None = None, limit: int = 100) -> list[TriggerRow]:
        query = select(retrain_triggers).order_by(retrain_triggers.c.created_at.desc(), retrain_triggers.c.id.desc())
        if model is not None:
            query = query.where(retrain_triggers.c.model == model)
        return [_trigger(r) for r in conn.execute(query.limit(limit)).all()]

    def get_trigger(self, conn: Connection, trigger_id: int) -> TriggerRow:
        row = conn.execute(select(retrain_triggers).where(retrain_triggers.c.id == trigger_id)).first()
        if row is None:
            raise NotFound("retraining trigger", trigger_id)
        return _trigger(row)

    def last_started(self, conn: Connection, model: str, statuses: tuple[str, ...] | None = None) -> int | None:
        """When the newest retraining of ``model`` (not a skipped one; or one with a status
        in ``statuses``) started, in ms."""
        where = (retrain_triggers.c.status != "skipped") if statuses is None else \
            retrain_triggers.c.status.in_(statuses)
        query = select(retrain_triggers.c.created_at).where(retrain_triggers.c.model == model, where) \
            .order_by(retrain_triggers.c.created_at.desc()).limit(1)
        return conn.execute(query).scalar()

    def failure_streak(self, conn: Connection, model: str) -> tuple[int, int | None]:
        """How many of ``model``'s newest finished retrainings failed in a row, and when the
        newest of them finished (ms)."""
        query = select(retrain_triggers.c.status, retrain_triggers.c.finished_at).where(
            retrain_triggers.c.model == model, retrain_triggers.c.status.in_(FAILED + COMPLETED)
        ).order_by(retrain_triggers.c.created_at.desc(), retrain_triggers.c.id.desc()).limit(50)
        streak, newest = 0, None
        for status, finished in conn.execute(query).all():
            if status not in FAILED:
                break
            streak += 1
            newest = finished if newest is None else newest
        return streak, newest


def describe_lease(row: TriggerRow, now: int) -> str:
    """``trigger 5 held by host:1234, last heartbeat 3s ago, lease until 2026-… (in 297s)``."""
    beat = f"last heartbeat {_ago(row.heartbeat_at, now)}" if row.heartbeat_at else "no heartbeat"
    if row.lease_until is None:
        lease = "no lease (made by an older conveyor)"
    elif row.lease_until > now:
        lease = f"lease ends in {(row.lease_until - now) / 1000:.0f}s"
    else:
        lease = f"lease expired {_ago(row.lease_until, now)}"
    return f"trigger {row.id} held by {row.holder or 'unknown'}, {beat}, {lease}"


def _ago(ms: int | None, now: int) -> str:
    return "at an unknown time" if ms is None else f"{max(now - ms, 0) / 1000:.0f}s ago"


def _trigger(row: Any) -> TriggerRow:
    return TriggerRow(**{k: v for k, v in row._mapping.items() if k != "lock_key"})


def _new_id(conn: Connection, statement: Any) -> int:
    key: Any = conn.execute(statement).inserted_primary_key
    return int(key[0])


def _evaluation(row: Any) -> EvaluationRow:
    m = dict(row._mapping)
    m["metrics"] = json.loads(m["metrics"])
    m["rules"] = json.loads(m["rules"])
    return EvaluationRow(**m)
