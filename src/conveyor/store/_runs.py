"""Runs with their params (immutable) and tags (mutable)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
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
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Row

from conveyor.entities import Run, RunStatus, now_ms
from conveyor.errors import Conflict, InvalidInput, NotFound, ParamConflict
from conveyor.store._dialect import insert_ignore
from conveyor.store._experiments import experiments
from conveyor.store._schema import BigInt, metadata, register_digest_column

MAX_KEY = 250
MAX_PARAM_VALUE = 6000

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInt, nullable=False),
    Column("end_time", BigInt),
    Column("parent_id", String(32), ForeignKey("runs.id", ondelete="SET NULL")),
    Column("user", String(256), nullable=False, default=""),
    Column("host", String(256), nullable=False, default=""),
    Column("entry_point", Text),
    Column("command", Text),
    Column("git_commit", String(64)),
    Column("git_branch", String(256)),
    Column("git_dirty", Boolean),
    Column("python_version", String(64)),
    Column("packages_digest", String(80)),
    Column("error", Text),
    Column("deleted_at", BigInt),
    # written by the tracker's background thread while the run's process lives (0007)
    Column("heartbeat_at", BigInt),
    Index("ix_runs_experiment_id_start_time", "experiment_id", "start_time"),
    Index("ix_runs_parent_id", "parent_id"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(MAX_KEY), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_params_key_value", "key", "value"),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(MAX_KEY), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_run_tags_key_value", "key", "value"),
)

register_digest_column(runs, "packages_digest")

RUN_COLUMNS = [c for c in runs.c if c.name not in ("deleted_at", "heartbeat_at")]


def validate_key(kind: str, key: object) -> str:
    """Keys name params, metrics and tags: non-empty strings without path tricks."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY or key != key.strip() or "\x00" in key:
        raise InvalidInput(
            f"{kind} key {key!r} is not valid",
            field=f"{kind}.key",
            value=key,
            hint=f"use a non-empty string of at most {MAX_KEY} characters without leading/trailing spaces",
        )
    return key


def validate_text(field: str, value: object, limit: int | None) -> str | None:
    """A text value as both databases accept it: a string of at most ``limit`` characters
    without NUL (PostgreSQL refuses NUL in text; SQLite would store anything)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text, not {type(value).__name__}", field=field, value=value)
    if "\x00" in value:
        raise InvalidInput(f"{field} contains a NUL character", field=field, value=value.replace("\x00", "\\x00"),
                           hint="remove the NUL (\\x00) character")
    if limit is not None and len(value) > limit:
        raise InvalidInput(
            f"{field} is {len(value):,} characters long; the limit is {limit}",
            field=field,
            value=value[:80] + "…",
            hint=f"use at most {limit} characters",
        )
    return value


def _param_value(key: str, value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    validate_text(f"param {key!r}", text, None)
    if len(text) > MAX_PARAM_VALUE:
        raise InvalidInput(
            f"param {key!r} value is {len(text)} characters long",
            field=key,
            value=text[:80] + "…",
            hint=f"params hold at most {MAX_PARAM_VALUE} characters; log long values as an artifact",
        )
    return text


class RunRepo:
    """Create, read, end and delete runs; log params and tags."""

    def create(self, conn: Connection, experiment_id: int, *, name: str | None = None, **fields: Any) -> str:
        return self.insert(conn, experiment_id, "", name=name, **fields).id

    def insert(
        self, conn: Connection, experiment_id: int, experiment: str, *, name: str | None = None, **fields: Any
    ) -> Run:
        """Insert a RUNNING run and return it as the entity (no read-back: this is a hot path)."""
        run_id = fields.pop("id", None) or uuid.uuid4().hex
        row = {column.name: None for column in RUN_COLUMNS}
        row.update(user="", host="")
        row.update(fields)
        for column in RUN_COLUMNS:
            if isinstance(column.type, (String, Text)) and column.name != "id":
                limit = getattr(column.type, "length", None)
                row[column.name] = validate_text(f"run {column.name}", row[column.name], limit)
        if name is not None:
            validate_text("run name", name, runs.c.name.type.length)  # type: ignore[attr-defined]
        row.update(id=run_id, experiment_id=experiment_id, name=name or run_id[:8], status=RunStatus.RUNNING.value)
        row["start_time"] = row.get("start_time") or now_ms()
        row["heartbeat_at"] = row["start_time"]
        conn.execute(_INSERT_RUN, row)
        row["deleted_at"] = None
        row["experiment"] = experiment
        return self.from_row(_Row(row))

    def exists(self, conn: Connection, run_id: str) -> bool:
        return conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is not None

    def require(self, conn: Connection, run_id: str) -> Row[Any]:
        row = conn.execute(_SELECT_STATE, {"run_id": run_id}).first()
        if row is None:
            raise NotFound("run", run_id, hint="`conveyor runs list` shows the known runs")
        return row

    def get(self, conn: Connection, run_id: str, *, metrics: Mapping[str, float] | None = None) -> Run:
        query = (
            select(*RUN_COLUMNS, runs.c.deleted_at, experiments.c.name.label("experiment"))
            .join(experiments, experiments.c.id == runs.c.experiment_id)
            .where(runs.c.id == run_id)
        )
        row = conn.execute(query).first()
        if row is None:
            raise NotFound("run", run_id, hint="`conveyor runs list` shows the known runs")
        return self.from_row(
            row,
            params=self.params_of(conn, [run_id]).get(run_id, {}),
            tags=self.tags_of(conn, [run_id]).get(run_id, {}),
            metrics=metrics or {},
        )

    @staticmethod
    def from_row(
        row: Any,
        *,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> Run:
        return Run(
            id=row.id,
            experiment_id=row.experiment_id,
            experiment=row.experiment,
            name=row.name,
            status=RunStatus(row.status),
            start_time=row.start_time,
            end_time=row.end_time,
            parent_id=row.parent_id,
            user=row.user,
            host=row.host,
            entry_point=row.entry_point,
            command=row.command,
            git_commit=row.git_commit,
            git_branch=row.git_branch,
            git_dirty=row.git_dirty,
            python_version=row.python_version,
            packages_digest=row.packages_digest,
            error=row.error,
            deleted=row.deleted_at is not None,
            params=dict(params or {}),
            metrics=dict(metrics or {}),
            tags=dict(tags or {}),
        )

    def end(self, conn: Connection, run_id: str, status: RunStatus, *, error: str | None = None) -> None:
        if not status.is_terminal:
            raise InvalidInput(f"cannot end a run as {status}", field="status", value=status)
        done = conn.execute(
            _END_RUN, {"run_id": run_id, "status": status.value, "end_time": now_ms(), "error": error}
        )
        if done.rowcount == 0:
            current = self.require(conn, run_id)
            raise Conflict(f"run {run_id} already ended as {current.status}")

    def heartbeat(self, conn: Connection, run_ids: Sequence[str], at: int | None = None) -> int:
        """Mark RUNNING runs (and their RUNNING child runs, e.g. pipeline steps) alive now."""
        if not run_ids:
            return 0
        stamp = at or now_ms()
        done = 0
        for chunk in _chunks(run_ids):
            result = conn.execute(
                update(runs)
                .where(runs.c.status == RunStatus.RUNNING.value)
                .where(or_(runs.c.id.in_(chunk), runs.c.parent_id.in_(chunk)))
                .values(heartbeat_at=stamp)
            )
            done += result.rowcount or 0
        return done

    def stale(self, conn: Connection, older_than_ms: int) -> list[tuple[str, int]]:
        """RUNNING runs whose last sign of life (heartbeat, else start) is before the cutoff."""
        alive = func.coalesce(runs.c.heartbeat_at, runs.c.start_time)
        query = (
            select(runs.c.id, alive)
            .where(runs.c.status == RunStatus.RUNNING.value, alive < older_than_ms)
            .order_by(alive)
        )
        return [(run_id, int(seen)) for run_id, seen in conn.execute(query).all()]

    def mark_dead(self, conn: Connection, run_id: str, older_than_ms: int, error: str) -> bool:
        """End one stale run as KILLED, unless it came back to life meanwhile."""
        alive = func.coalesce(runs.c.heartbeat_at, runs.c.start_time)
        result = conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.status == RunStatus.RUNNING.value, alive < older_than_ms)
            .values(status=RunStatus.KILLED.value, end_time=now_ms(), error=error)
        )
        return bool(result.rowcount)

    def log_params(self, conn: Connection, run_id: str, values: Mapping[str, object]) -> None:
        """Insert params; the same value again is fine, a different one raises ``ParamConflict``."""
        rows = {validate_key("param", k): _param_value(k, v) for k, v in values.items()}
        if not rows:
            return
        self._require_active(conn, run_id)
        stored = dict(conn.execute(_SELECT_PARAMS, {"run_id": run_id, "keys": list(rows)}).all())
        for key, new in rows.items():
            if key in stored and stored[key] != new:
                raise ParamConflict(run_id, key, stored[key], new)
        fresh = [{"run_id": run_id, "key": k, "value": v} for k, v in rows.items() if k not in stored]
        if fresh:
            # a concurrent writer may insert the same key between our read and this write:
            # insert-or-ignore, then the read-back below decides
            conn.execute(insert_ignore(conn, params, ["run_id", "key"]), fresh)
            again = dict(conn.execute(_SELECT_PARAMS, {"run_id": run_id, "keys": [r["key"] for r in fresh]}).all())
            for row in fresh:
                if again.get(row["key"]) != row["value"]:
                    raise ParamConflict(run_id, row["key"], again.get(row["key"], ""), row["value"])

    def set_tags(self, conn: Connection, run_id: str, values: Mapping[str, object]) -> None:
        rows = {validate_key("tag", k): str(v) for k, v in values.items()}
        for key, value in rows.items():
            validate_text(f"tag {key!r}", value, None)
        if not rows:
            return
        self.require(conn, run_id)
        conn.execute(
            delete(run_tags).where(run_tags.c.run_id == run_id, run_tags.c.key.in_(list(rows)))
        )
        conn.execute(run_tags.insert(), [{"run_id": run_id, "key": k, "value": v} for k, v in rows.items()])

    def delete_tag(self, conn: Connection, run_id: str, key: str) -> None:
        result = conn.execute(delete(run_tags).where(run_tags.c.run_id == run_id, run_tags.c.key == key))
        if result.rowcount == 0:
            raise NotFound("tag", key)

    def _require_active(self, conn: Connection, run_id: str) -> None:
        row = self.require(conn, run_id)
        if row.deleted_at is not None:
            raise Conflict(f"run {run_id} is deleted; restore it before logging to it")

    def params_of(self, conn: Connection, run_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        return _grouped(conn, params, run_ids)

    def tags_of(self, conn: Connection, run_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        return _grouped(conn, run_tags, run_ids)

    # -- deletion ---------------------------------------------------------------------------
    def set_deleted(self, conn: Connection, run_ids: Iterable[str], deleted: bool) -> None:
        for run_id in run_ids:
            self.require(conn, run_id)
            conn.execute(
                update(runs).where(runs.c.id == run_id).values(deleted_at=now_ms() if deleted else None)
            )

    def deleted_ids(self, conn: Connection, *, older_than_ms: int | None = None) -> list[str]:
        query = select(runs.c.id).where(runs.c.deleted_at.is_not(None))
        if older_than_ms is not None:
            query = query.where(runs.c.deleted_at <= older_than_ms)
        return list(conn.execute(query).scalars())

    def purge(self, conn: Connection, run_ids: Sequence[str]) -> None:
        """Remove deleted runs for good; children keep existing with no parent."""
        for chunk in _chunks(run_ids):
            conn.execute(update(runs).where(runs.c.parent_id.in_(chunk)).values(parent_id=None))
            for table in metadata.sorted_tables[::-1]:
                if table is not runs and "run_id" in table.c and _references_runs(table):
                    conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
            conn.execute(delete(runs).where(runs.c.id.in_(chunk)))


class _Row(dict[str, Any]):
    """A dict read like a Row (attribute access), to build entities without a read-back."""

    def __getattr__(self, name: str) -> Any:
        return self[name]


_INSERT_RUN = runs.insert()
_SELECT_STATE = select(runs.c.status, runs.c.deleted_at).where(runs.c.id == bindparam("run_id"))
_END_RUN = (
    update(runs)
    .where(runs.c.id == bindparam("run_id"), runs.c.status == RunStatus.RUNNING.value)
    .values(status=bindparam("status"), end_time=bindparam("end_time"), error=bindparam("error"))
)
_SELECT_PARAMS = select(params.c.key, params.c.value).where(
    params.c.run_id == bindparam("run_id"), params.c.key.in_(bindparam("keys", expanding=True))
)


def _references_runs(table: Table) -> bool:
    return any(fk.column.table is runs for fk in table.c.run_id.foreign_keys)


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _grouped(conn: Connection, table: Table, run_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for chunk in _chunks(run_ids):
        query = select(table.c.run_id, table.c.key, table.c.value).where(table.c.run_id.in_(chunk))
        for run_id, key, value in conn.execute(query).all():
            out.setdefault(run_id, {})[key] = value
    return out


__all__ = ["RunRepo", "params", "run_tags", "runs", "validate_key", "validate_text"]
