"""Pipeline runs, step executions and their outputs: the step cache lives here.

A pipeline run is a tracking run (``runs``) plus a row in ``pipeline_runs`` holding its
DAG; each step execution is a child run plus a row in ``step_executions`` with the
cache key, and one ``step_outputs`` row per output (a manifest digest in the artifact
store). A cache lookup is "the newest FINISHED execution with this key".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Column, ForeignKey, Index, String, Table, Text, select, update
from sqlalchemy.engine import Connection

from conveyor.entities import now_ms
from conveyor.store._schema import BigInt, metadata, register_digest_column

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("pipeline", String(256), nullable=False),
    Column("executor", String(32), nullable=False),
    Column("dag", Text, nullable=False),
    Column("created_at", BigInt, nullable=False),
    Index("ix_pipeline_runs_pipeline_created_at", "pipeline", "created_at"),
    Index("ix_pipeline_runs_created_at", "created_at"),
)

step_executions = Table(
    "step_executions",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "pipeline_run_id", String(32), ForeignKey("pipeline_runs.run_id", ondelete="CASCADE"), nullable=False
    ),
    Column("step", String(256), nullable=False),
    Column("cache_key", String(80), nullable=False),
    Column("status", String(16), nullable=False),
    Column("cached", Boolean, nullable=False, default=False),
    Column("started_at", BigInt, nullable=False),
    Column("ended_at", BigInt),
    Index("ix_step_executions_pipeline_run_id", "pipeline_run_id"),
    Index("ix_step_executions_cache_key_status_ended_at", "cache_key", "status", "ended_at"),
)

step_outputs = Table(
    "step_outputs",
    metadata,
    Column("run_id", String(32), ForeignKey("step_executions.run_id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("materializer", String(128), nullable=False),
    Column("type_name", String(256), nullable=False),
    Index("ix_step_outputs_digest", "digest"),
)
# Every output is a folder written by a materializer, stored as a manifest.
register_digest_column(step_outputs, "digest", manifest=True)


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One stored output of a step execution."""

    name: str
    digest: str
    materializer: str
    type_name: str


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """One step execution (a child run of a pipeline run)."""

    run_id: str
    pipeline_run_id: str
    step: str
    cache_key: str
    status: str
    cached: bool
    started_at: int
    ended_at: int | None
    outputs: Mapping[str, OutputRecord]


@dataclass(frozen=True, slots=True)
class PipelineRunRecord:
    """A pipeline run: the tracking run id, the pipeline's name, executor and DAG."""

    run_id: str
    pipeline: str
    executor: str
    dag: Mapping[str, Any]
    created_at: int


class PipelineRepo:
    """Rows of pipeline runs and step executions; methods take a connection."""

    def create_run(self, conn: Connection, run_id: str, pipeline: str, executor: str, dag: Mapping[str, Any]) -> None:
        conn.execute(
            pipeline_runs.insert().values(
                run_id=run_id, pipeline=pipeline, executor=executor,
                dag=json.dumps(dag, sort_keys=True), created_at=now_ms(),
            )
        )

    def list_runs(self, conn: Connection, pipeline: str | None = None, limit: int = 50) -> list[PipelineRunRecord]:
        query = select(pipeline_runs).order_by(pipeline_runs.c.created_at.desc()).limit(limit)
        if pipeline is not None:
            query = query.where(pipeline_runs.c.pipeline == pipeline)
        return [
            PipelineRunRecord(r.run_id, r.pipeline, r.executor, json.loads(r.dag), r.created_at)
            for r in conn.execute(query)
        ]

    def start_execution(
        self, conn: Connection, run_id: str, pipeline_run_id: str, step: str, cache_key: str, *, cached: bool = False
    ) -> None:
        conn.execute(
            step_executions.insert().values(
                run_id=run_id, pipeline_run_id=pipeline_run_id, step=step, cache_key=cache_key,
                status="RUNNING", cached=cached, started_at=now_ms(),
            )
        )

    def finish_execution(
        self, conn: Connection, run_id: str, status: str, outputs: Sequence[OutputRecord] = ()
    ) -> None:
        """Outputs are written in the same transaction as the FINISHED status, so a reader never
        sees a finished execution without its outputs (nor outputs of an unfinished one)."""
        if outputs:
            conn.execute(
                step_outputs.insert(),
                [
                    {"run_id": run_id, "name": o.name, "digest": o.digest,
                     "materializer": o.materializer, "type_name": o.type_name}
                    for o in outputs
                ],
            )
        conn.execute(
            update(step_executions)
            .where(step_executions.c.run_id == run_id)
            .values(status=status, ended_at=now_ms())
        )

    def cache_candidates(self, conn: Connection, cache_key: str, limit: int = 5) -> list[ExecutionRecord]:
        """The newest FINISHED executions with ``cache_key`` (the caller checks their outputs)."""
        rows = conn.execute(
            select(step_executions)
            .where(step_executions.c.cache_key == cache_key, step_executions.c.status == "FINISHED")
            .order_by(step_executions.c.ended_at.desc())
            .limit(limit)
        ).all()
        return self._with_outputs(conn, rows)

    def executions_of(self, conn: Connection, pipeline_run_id: str) -> list[ExecutionRecord]:
        rows = conn.execute(
            select(step_executions)
            .where(step_executions.c.pipeline_run_id == pipeline_run_id)
            .order_by(step_executions.c.started_at)
        ).all()
        return self._with_outputs(conn, rows)

    @staticmethod
    def _with_outputs(conn: Connection, rows: Sequence[Any]) -> list[ExecutionRecord]:
        ids = [r.run_id for r in rows]
        outputs: dict[str, dict[str, OutputRecord]] = {i: {} for i in ids}
        if ids:
            for o in conn.execute(select(step_outputs).where(step_outputs.c.run_id.in_(ids))):
                outputs[o.run_id][o.name] = OutputRecord(o.name, o.digest, o.materializer, o.type_name)
        return [
            ExecutionRecord(
                r.run_id, r.pipeline_run_id, r.step, r.cache_key, r.status, bool(r.cached),
                r.started_at, r.ended_at, outputs[r.run_id],
            )
            for r in rows
        ]
