"""``/api/v1/pipelines``: pipeline runs and their steps — status, cache hit or miss,
duration, parameters, inputs and outputs, metrics, and the captured log of each step.

A pipeline run is a tracking run plus its stored DAG; each step execution is a child run
(``conveyor pipeline runs`` reads the same rows). Permission: ``read`` on kind
``experiment``, the id of the experiment the pipeline run belongs to; lists leave out runs
of experiments the caller may not read.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from conveyor.errors import NotFound
from conveyor.server.api import _deps
from conveyor.server.api._listing import MAX_PAGE, allowed, offset_of, make_token

router = APIRouter(prefix="/pipelines", tags=["pipelines"])

RunId = Path(..., description="The pipeline run's id (a tracking run id).", min_length=1, max_length=32)
StepName = Path(..., description="The step's node id in the pipeline.", min_length=1, max_length=256)


class StepInput(BaseModel):
    argument: str = Field(description="The step function's argument.")
    source: str = Field(description="<upstream node>.<output> in the DAG.")


class StepOutput(BaseModel):
    name: str
    digest: str = Field(description="Manifest digest of the materialized output in the artifact store.")
    materializer: str
    type_name: str
    uri: str = Field(description="runs:/<step run>/outputs/<name>")


class StepOut(BaseModel):
    step: str
    run_id: str = Field(description="The step's own tracking run.")
    status: str = Field(description="RUNNING | FINISHED | FAILED | KILLED")
    cache: str = Field(description="hit (reused an earlier execution), miss, disabled or refused")
    cached: bool
    cache_key: str
    started_at: int
    ended_at: int | None
    duration_s: float | None
    params: dict[str, str]
    metrics: dict[str, float]
    inputs: list[StepInput]
    input_refs: list[str] = Field(description="What the step read, as recorded in lineage "
                                              "(runs:/<run>/outputs/<name>, data:/<name>@<version>).")
    outputs: list[StepOutput]
    error: str | None
    has_log: bool = Field(description="Whether GET …/log has the captured stdout and stderr.")


class PipelineRunOut(BaseModel):
    run_id: str
    pipeline: str
    executor: str = Field(description="local or ray")
    experiment_id: int
    status: str
    created_at: int
    ended_at: int | None
    duration_s: float | None
    params: dict[str, str]
    metrics: dict[str, float]
    steps: int
    cached: int = Field(description="How many steps were cache hits.")


class PipelineRunDetail(PipelineRunOut):
    dag: dict[str, Any] = Field(description="The DAG as run: steps, their inputs, parameters and outputs.")
    step_runs: list[StepOut]


class PipelineRunPage(BaseModel):
    runs: list[PipelineRunOut]
    next_page_token: str | None = None


class StepList(BaseModel):
    steps: list[StepOut]


def _summary(record: Any, run: Any, executions: list[Any]) -> dict[str, Any]:
    return {
        "run_id": record.run_id, "pipeline": record.pipeline, "executor": record.executor,
        "experiment_id": run.experiment_id, "status": run.status.value, "created_at": record.created_at,
        "ended_at": run.end_time, "duration_s": run.duration_s, "params": dict(run.params),
        "metrics": dict(run.metrics), "steps": len(executions), "cached": sum(e.cached for e in executions),
    }


def _steps(tracker: Any, conn: Any, record: Any, executions: list[Any]) -> list[StepOut]:
    from conveyor.store import LineageRepo

    nodes = {s["id"]: s for s in record.dag.get("steps", [])}
    edges = LineageRepo().neighbours(conn, [("run", e.run_id) for e in executions], upstream=True)
    refs: dict[str, list[str]] = {}
    for up_kind, up_id, _kind, down_id, relation, *_ in edges:
        if relation == "input":
            refs.setdefault(down_id, []).append(_node_ref(up_kind, up_id))
    metrics = tracker.store.metrics.latest_of(conn, [e.run_id for e in executions])
    out = []
    for e in executions:
        run = tracker.store.runs.get(conn, e.run_id, metrics=metrics.get(e.run_id, {}))
        artifacts = {a.path for a in tracker.store.artifacts.list(conn, e.run_id)}
        node = nodes.get(e.step, {})
        out.append(StepOut(
            step=e.step, run_id=e.run_id, status=e.status, cache=run.tags.get("conveyor.cache", "hit" if e.cached else "miss"),
            cached=e.cached, cache_key=e.cache_key, started_at=e.started_at, ended_at=e.ended_at,
            duration_s=None if e.ended_at is None else (e.ended_at - e.started_at) / 1000,
            params=dict(run.params), metrics=dict(run.metrics),
            inputs=[StepInput(argument=k, source=v) for k, v in (node.get("inputs") or {}).items()],
            input_refs=refs.get(e.run_id, []),
            outputs=[StepOutput(name=o.name, digest=o.digest, materializer=o.materializer, type_name=o.type_name,
                                uri=f"runs:/{e.run_id}/outputs/{o.name}") for o in e.outputs.values()],
            error=run.error, has_log="logs/step.log" in artifacts,
        ))
    return out


def _node_ref(kind: str, ident: str) -> str:
    from conveyor.data import Node

    return str(Node(kind, ident))


def _record(tracker: Any, conn: Any, run_id: str) -> Any:
    from conveyor.store import PipelineRunRecord, pipeline_runs

    row = conn.execute(pipeline_runs.select().where(pipeline_runs.c.run_id == run_id)).first()
    if row is None:
        raise NotFound("pipeline run", run_id, hint="GET /api/v1/pipelines/runs lists them")
    return PipelineRunRecord(row.run_id, row.pipeline, row.executor, json.loads(row.dag), row.created_at)


def _read(request: Request, run_id: str) -> tuple[Any, Any, list[Any], list[StepOut]]:
    from conveyor.store import PipelineRepo

    tracker = _deps.tracker(request)
    def read(conn: Any) -> tuple[Any, Any, list[Any], list[StepOut]]:
        record = _record(tracker, conn, run_id)
        run = tracker.store.runs.get(conn, run_id, metrics=tracker.store.metrics.latest_of(conn, [run_id]).get(run_id, {}))
        _deps.authorize(request, "experiment", str(run.experiment_id), "read")
        executions = PipelineRepo().executions_of(conn, run_id)
        steps = _steps(tracker, conn, record, executions)
        return record, run, executions, steps

    return tracker.store.query(read, what=f"reading pipeline run {run_id}")  # type: ignore[no-any-return]


@router.get("/runs", response_model=PipelineRunPage, summary="Pipeline runs, newest first")
def list_runs(
    request: Request,
    pipeline: str | None = Query(None, max_length=256, description="Only runs of this pipeline."),
    status: Literal["RUNNING", "FINISHED", "FAILED", "KILLED"] | None = Query(None),
    max_results: int = Query(50, ge=1, le=MAX_PAGE), page_token: str | None = Query(None),
) -> Any:
    from conveyor.store import PipelineRepo

    offset = offset_of(page_token)
    tracker = _deps.tracker(request)
    repo = PipelineRepo()

    def read(conn: Any) -> tuple[list[PipelineRunOut], int]:
        records = repo.list_runs(conn, pipeline, offset + max_results + 1) if status is None else \
            repo.list_runs(conn, pipeline, 1_000_000)
        visible = []
        metrics = tracker.store.metrics.latest_of(conn, [r.run_id for r in records])
        for record in records:
            run = tracker.store.runs.get(conn, record.run_id, metrics=metrics.get(record.run_id, {}))
            if status is not None and run.status.value != status:
                continue
            if not allowed(request, "experiment", str(run.experiment_id), "read"):
                continue
            visible.append((record, run))
        chosen = [PipelineRunOut(**_summary(record, run, repo.executions_of(conn, record.run_id)))
                  for record, run in visible[offset : offset + max_results]]
        return chosen, len(visible)

    chosen, seen = tracker.store.query(read, what="listing pipeline runs")
    more = seen > offset + max_results
    return PipelineRunPage(runs=chosen, next_page_token=make_token(offset + max_results) if more else None)


@router.get("/runs/{run_id}", response_model=PipelineRunDetail, summary="A pipeline run with its DAG and steps")
def get_run(request: Request, run_id: str = RunId) -> Any:
    record, run, executions, steps = _read(request, run_id)
    return PipelineRunDetail(**_summary(record, run, executions), dag=record.dag, step_runs=steps)


@router.get("/runs/{run_id}/steps", response_model=StepList, summary="The steps of a pipeline run, in start order")
def list_steps(request: Request, run_id: str = RunId) -> Any:
    return StepList(steps=_read(request, run_id)[3])


def _step(request: Request, run_id: str, step: str) -> StepOut:
    steps = _read(request, run_id)[3]
    for s in steps:
        if s.step == step:
            return s
    raise NotFound("step", f"{run_id}/{step}", hint=f"the run has steps {', '.join(s.step for s in steps) or '(none)'}")


@router.get("/runs/{run_id}/steps/{step}", response_model=StepOut, summary="One step execution")
def get_step(request: Request, run_id: str = RunId, step: str = StepName) -> Any:
    return _step(request, run_id, step)


@router.get("/runs/{run_id}/steps/{step}/log", response_class=PlainTextResponse,
            summary="The step's captured stdout and stderr (text)",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def step_log(request: Request, run_id: str = RunId, step: str = StepName) -> Any:
    found = _step(request, run_id, step)
    if not found.has_log:
        raise NotFound("step log", f"{run_id}/{step}", hint="the step printed nothing, or has not finished")
    data = _deps.tracker(request).read_artifact(found.run_id, "logs/step.log")
    return PlainTextResponse(data.decode("utf-8", errors="replace"), media_type="text/plain; charset=utf-8")
