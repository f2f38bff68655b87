"""``/api/v1/pipelines/runs`` writes: remote mode's pipeline coordinator
(``conveyor.pipelines._remote``) records a pipeline run through these, and the server runs the
same ``conveyor.pipelines._record`` code on its stores that embedded mode runs in-process.

- ``POST /pipelines/runs``: the pipeline row of an existing tracking run (its DAG, executor).
- ``POST /pipelines/runs/{run}/cache-lookup``: the newest finished execution with a cache key
  whose outputs are all stored and intact (a corrupt object is removed), in an experiment
  the caller may read, or ``run_id: null``.
- ``POST /pipelines/runs/{run}/steps``: open a step's RUNNING child run; with ``cached_from``
  the whole cache hit (the reused execution's outputs, read here, not from the client).
- ``PATCH /pipelines/runs/{run}/steps/{step_run}``: a step's end, outputs, log, metrics and
  what it logged, with its lineage, in one transaction.
- ``POST /pipelines/runs/{run}/contract``: the declared candidate and evaluation.

Every write takes an ``Idempotency-Key``; the key is kept as a receipt in the write's own
transaction, so the same request again answers the first result and writes nothing.
Permission: ``edit`` on the experiment of the pipeline run (and ``read`` on the experiment of
an execution a cache hit reuses); ``read`` on a data set to pin it as an input.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Request
from pydantic import Field
from sqlalchemy import select
from starlette.responses import Response

from conveyor.errors import Conflict, InvalidInput, NotFound
from conveyor.server.api import _deps
from conveyor.server.api._errors import ApiV1Error
from conveyor.server.api._models import IDEMPOTENCY_KEY, RUN_ID, _Body, _Out, json_response, no_nul
from conveyor.server.api.runs import authorize_run

router = APIRouter(prefix="/pipelines/runs", tags=["pipelines"])
#: ``POST /pipelines/dataset-inputs``: pin a data set version as a pipeline input
inputs_router = APIRouter(prefix="/pipelines", tags=["pipelines"])

RunId = Path(..., description="The pipeline run's id.", pattern=RUN_ID, max_length=32)
StepRunId = Path(..., description="The step's own run id.", pattern=RUN_ID, max_length=32)
Key = Header(None, alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY,
             description="The same key again answers the first attempt's result and writes nothing.")
_NAME = r"^[A-Za-z0-9_.\-]{1,256}$"


class Output(_Body):
    digest: str = Field(min_length=7, max_length=80, description="Manifest digest of the stored output folder.")
    materializer: str = Field(min_length=1, max_length=128)
    type_name: str = Field(max_length=256)


class PipelineRunCreate(_Body):
    run_id: str = Field(pattern=RUN_ID, description="The pipeline's tracking run (created with POST /runs).")
    pipeline: str = Field(min_length=1, max_length=256)
    executor: str = Field(pattern=r"^(local|ray)$")
    dag: dict[str, Any] = Field(description="The pipeline's DAG (Graph.describe()).")


class Lookup(_Body):
    step: str = Field(pattern=_NAME)
    cache_key: str = Field(min_length=1, max_length=80)
    outputs: list[str] = Field(max_length=256, description="The step's declared output names.")


class LookupOut(_Out):
    run_id: str | None = Field(description="The reusable execution's run, or null.")
    pipeline_run_id: str | None = Field(None, description="The pipeline run it belongs to (its objects are there).")
    outputs: dict[str, dict[str, str]] = Field(default_factory=dict)


class StepOpen(_Body):
    step: str = Field(pattern=_NAME)
    cache_key: str = Field(min_length=1, max_length=80)
    cache: Literal["miss", "disabled", "refused", "hit"]
    params: dict[str, Any] = Field(default_factory=dict)
    data_inputs: list[str] = Field(default_factory=list, max_length=1000)
    tags: dict[str, str] = Field(default_factory=dict, description="More tags (conveyor.cache_refused).")
    cached_from: str | None = Field(None, pattern=RUN_ID, description="With cache=hit: the execution reused.")
    metrics: dict[str, float] = Field(default_factory=dict, description="With cache=hit: the step's metrics.")
    upstream: list[str] = Field(default_factory=list, max_length=1000, description="Lineage inputs (runs:/, data:/).")


class StepClose(_Body):
    status: Literal["FINISHED", "FAILED"]
    outputs: dict[str, Output] = Field(default_factory=dict)
    logs: str | None = Field(None, max_length=80, description="Digest of the captured log.")
    metrics: dict[str, float] = Field(default_factory=dict)
    error: str | None = Field(None, max_length=1_000_000)
    tracking: dict[str, Any] | None = Field(None, description="What the step logged (StepTracker.record()).")
    bookkeeping: dict[str, str | int | float] = Field(default_factory=dict)
    upstream: list[str] = Field(default_factory=list, max_length=1000)


class Contract(_Body):
    uri: str | None = Field(None, max_length=2048)
    evaluation_run: str | None = Field(None, pattern=RUN_ID)
    candidate_run: str | None = Field(None, pattern=RUN_ID)
    evaluation: dict[str, float] = Field(default_factory=dict)


class DatasetInput(_Body):
    ref: str = Field(min_length=1, max_length=300, description="name, name@N or data:/name@N.")


class DatasetInputOut(_Out):
    ref: str = Field(description="The pinned version, data:/name@N.")
    output: dict[str, str] = Field(description="A stored output over its content (digest, materializer, type_name).")


class StepRunOut(_Out):
    run_id: str


def _once(request: Request, key: str | None, what: str, body: Callable[[Any], Any]) -> Any:
    """``body(conn)`` in one transaction with ``key`` kept as its receipt (exactly once)."""
    from conveyor.store import write_receipts

    store = _deps.tracker(request).store
    if key is None:
        return store.transaction(body, once=True, what=what)
    token = hashlib.sha256(f"pipelines:{key}".encode()).hexdigest()[:32]

    def write(conn: Any) -> Any:
        done = conn.execute(select(write_receipts.c.result).where(write_receipts.c.token == token)).first()
        if done is not None:
            return None if done.result is None else json.loads(done.result)
        result = body(conn)
        conn.execute(write_receipts.insert().values(token=token, at=int(time.time() * 1000),
                                                    result=None if result is None else json.dumps(result)))
        return result

    return store.transaction(write, what=what)


def _pipeline_run(request: Request, run_id: str) -> Any:
    """The pipeline's tracking run, after checking ``edit`` on its experiment."""
    authorize_run(request, run_id, "edit")
    return _deps.tracker(request).get_run(run_id)


def _is_pipeline(request: Request, run_id: str) -> None:
    from conveyor.store._pipelines import pipeline_runs

    query = select(pipeline_runs.c.run_id).where(pipeline_runs.c.run_id == run_id)
    if _deps.tracker(request).store.query(lambda conn: conn.execute(query).first(),
                                          what=f"reading pipeline run {run_id}") is None:
        raise NotFound("pipeline run", run_id, hint="record it first with POST /api/v1/pipelines/runs")


def _digest(text: str, field: str) -> str:
    from conveyor.blobs import Digest

    try:
        return str(Digest.parse(text))
    except (InvalidInput, ValueError):
        raise ApiV1Error("INVALID", f"{text[:100]!r} is not a digest (blake3:<64 hex characters>)",
                         field=field) from None


def _metrics(values: dict[str, float], field: str) -> dict[str, float]:
    from conveyor.store import validate_key

    for key in values:
        try:
            validate_key("metric", key)
        except InvalidInput:
            raise ApiV1Error("INVALID", f"{key[:100]!r} is not a valid metric name", field=field) from None
    return values


def _refs(refs: list[str], field: str) -> list[str]:
    for ref in refs:
        if not (ref.startswith("runs:/") or ref.startswith("data:/")) or len(ref) > 2048:
            raise ApiV1Error("INVALID", f"{ref[:100]!r} is not a runs:/ or data:/ URI", field=field)
    return refs


def _stored(request: Request, outputs: dict[str, Output], logs: str | None) -> dict[str, dict[str, str]]:
    """The outputs as the store code takes them, each object stored (else a 400 naming it)."""
    from conveyor.blobs import Digest

    blobs = _deps.tracker(request).blobs
    for name in outputs:
        if not 0 < len(name) <= 128:
            raise ApiV1Error("INVALID", f"output name {name[:100]!r} must be 1 to 128 characters", field="outputs")
    found = {n: {"digest": _digest(o.digest, f"outputs.{n}.digest"), "materializer": o.materializer,
                 "type_name": o.type_name} for n, o in outputs.items()}
    wanted = {f"outputs.{n}.digest": o["digest"] for n, o in found.items()}
    if logs is not None:
        wanted["logs"] = _digest(logs, "logs")
    present = blobs.exists_many(Digest.parse(d) for d in wanted.values())
    for field, digest in wanted.items():
        if Digest.parse(digest) not in present:
            raise ApiV1Error("INVALID", f"object {digest} is not stored; upload it first "
                             "(PUT /api/v1/pipelines/runs/{run}/blobs/{digest})", field=field)
    return found


def _possessed(request: Request, outputs: dict[str, dict[str, str]], logs: str | None,
               tracking: dict[str, Any] | None) -> None:
    """A 403 unless the caller sent (or may read something holding) every object the step's
    end names: outputs and what they list, the log, what the step logged (``_possession``)."""
    from conveyor.blobs import Digest
    from conveyor.server import _possession
    from conveyor.server.api.pipeline_blobs import readable_outputs

    named = {f"output {n!r}": (Digest.parse(o["digest"]), True) for n, o in outputs.items()}
    if logs is not None:
        named["logs"] = (Digest.parse(logs), False)
    for path, digest, _size, _media, is_dir in (tracking or {}).get("artifacts", ()):
        named[f"artifact {path!r}"] = (Digest.parse(digest), is_dir)
    _possession.require_objects(request, named, "outputs",
                                lambda rest: readable_outputs(request, rest))


def _tracking(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A step's logged record, checked (keys, paths, digests) before the store code writes it."""
    if not record:
        return None
    from conveyor.store import validate_key
    from conveyor.tracking._values import artifact_path

    try:
        params = {validate_key("param", str(k)): str(v) for k, v in dict(record.get("params") or {}).items()}
        tags = {validate_key("tag", str(k)): str(v) for k, v in dict(record.get("tags") or {}).items()}
        metrics = [(validate_key("metric", str(k)), float(v), int(s), int(t))
                   for k, v, s, t in record.get("metrics") or ()]
        artifacts = [(artifact_path(str(p)), _digest(str(d), "tracking.artifacts"), int(z), str(m)[:256], bool(i))
                     for p, d, z, m, i in record.get("artifacts") or ()]
    except (TypeError, ValueError) as exc:
        raise ApiV1Error("INVALID", f"the step's tracking record is malformed: {exc}", field="tracking") from None
    return {"params": params, "tags": tags, "metrics": metrics, "artifacts": artifacts}


@router.post("", response_model=StepRunOut, status_code=201, dependencies=[Depends(no_nul)],
             summary="Record a tracking run as a pipeline run (its DAG and executor)")
def create_pipeline_run(request: Request, body: PipelineRunCreate, idempotency_key: str | None = Key) -> Response:
    from conveyor.pipelines._record import repo

    from conveyor.store._pipelines import pipeline_runs

    _pipeline_run(request, body.run_id)

    def write(conn: Any) -> None:
        if conn.execute(select(pipeline_runs.c.run_id).where(pipeline_runs.c.run_id == body.run_id)).first():
            raise Conflict(f"run {body.run_id} is already a pipeline run")
        repo.create_run(conn, body.run_id, body.pipeline, body.executor, body.dag)

    _once(request, idempotency_key, "recording the pipeline run", write)
    return json_response(StepRunOut(run_id=body.run_id), 201)


@router.post("/{run_id}/cache-lookup", response_model=LookupOut, dependencies=[Depends(no_nul)],
             summary="The newest finished execution with this cache key whose outputs are intact")
def cache_lookup(request: Request, body: Lookup, run_id: str = RunId) -> Response:
    from conveyor.pipelines._cache import outputs_intact
    from conveyor.pipelines._record import repo

    _pipeline_run(request, run_id)
    tracker = _deps.tracker(request)
    candidates = tracker.store.query(lambda conn: repo.cache_candidates(conn, body.cache_key),
                                     what="looking up the step cache")
    for execution in candidates:
        # an execution in an experiment the caller may not read is not theirs to reuse
        experiment = str(tracker.get_run(execution.run_id).experiment_id)
        if not _deps.readable(request, "experiment", [experiment]):
            continue
        outputs = {n: {"digest": o.digest, "materializer": o.materializer, "type_name": o.type_name}
                   for n, o in execution.outputs.items()}
        if set(outputs) == set(body.outputs) and outputs_intact(tracker.blobs, {n: o["digest"] for n, o in outputs.items()}):
            return json_response(LookupOut(run_id=execution.run_id, pipeline_run_id=execution.pipeline_run_id,
                                           outputs=outputs))
    return json_response(LookupOut(run_id=None))


@router.post("/{run_id}/steps", response_model=StepRunOut, status_code=201, dependencies=[Depends(no_nul)],
             summary="Open a step's run (RUNNING), or record a whole cache hit (cached_from)")
def open_step(request: Request, body: StepOpen, run_id: str = RunId, idempotency_key: str | None = Key) -> Response:
    from conveyor.pipelines import _record

    parent = _pipeline_run(request, run_id)
    _is_pipeline(request, run_id)
    tracker = _deps.tracker(request)
    context = {f: getattr(parent, f) for f in _record.CONTEXT_FIELDS if getattr(parent, f, None) is not None}
    data_inputs = _refs(body.data_inputs, "data_inputs")
    upstream = _refs(body.upstream, "upstream")
    for key in body.tags:
        if key != "conveyor.cache_refused":
            raise ApiV1Error("INVALID", f"tag {key!r} cannot be set here", field="tags")
    if (body.cache == "hit") != (body.cached_from is not None):
        raise ApiV1Error("INVALID", "cached_from goes with cache=hit, and only with it", field="cached_from")
    metrics = _metrics(body.metrics, "metrics")
    outputs: dict[str, dict[str, str]] = {}
    if body.cached_from is not None:
        authorize_run(request, body.cached_from, "read")  # its record is copied into this run
        candidates = tracker.store.query(lambda conn: _record.repo.cache_candidates(conn, body.cache_key, limit=50),
                                         what="looking up the step cache")
        found = [e for e in candidates if e.run_id == body.cached_from]
        if not found:
            raise ApiV1Error("INVALID", f"run {body.cached_from} is no finished execution with cache key "
                             f"{body.cache_key}", field="cached_from")
        outputs = {n: {"digest": o.digest, "materializer": o.materializer, "type_name": o.type_name}
                   for n, o in found[0].outputs.items()}

    def write(conn: Any) -> str:
        if body.cached_from is not None:
            return _record.record_hit(
                tracker, conn, experiment_id=parent.experiment_id, parent_id=run_id, node=body.step,
                key=body.cache_key, params=body.params, context=context, data_inputs=data_inputs,
                source_run=body.cached_from, outputs=outputs, metrics=metrics, upstream=upstream)
        step_run = _record.open_step(tracker, parent.experiment_id, run_id, body.step, body.cache_key, body.params,
                                     body.cache, conn=conn, context=context, data_inputs=data_inputs)
        if body.tags:
            tracker.store.runs.set_tags(conn, step_run, body.tags)
        return step_run

    step_run = _once(request, idempotency_key, f"recording step {body.step!r}", write)
    return json_response(StepRunOut(run_id=str(step_run)), 201)


@router.patch("/{run_id}/steps/{step_run}", response_model=StepRunOut, dependencies=[Depends(no_nul)],
              summary="Record a step's end: outputs, log, metrics, what it logged and its lineage")
def close_step(request: Request, body: StepClose, run_id: str = RunId, step_run: str = StepRunId,
               idempotency_key: str | None = Key) -> Response:
    from conveyor.pipelines import _record
    from conveyor.store._pipelines import step_executions

    _pipeline_run(request, run_id)
    tracker = _deps.tracker(request)
    outputs = _stored(request, body.outputs, body.logs)
    tracking = _tracking(body.tracking)
    _possessed(request, outputs, body.logs, tracking)
    metrics = _metrics(body.metrics, "metrics")
    upstream = _refs(body.upstream, "upstream")

    def write(conn: Any) -> str:
        row = conn.execute(select(step_executions.c.status).where(
            step_executions.c.run_id == step_run, step_executions.c.pipeline_run_id == run_id)).first()
        if row is None:
            raise NotFound("step run", step_run, hint=f"a step of pipeline run {run_id}")
        if row.status != "RUNNING":
            raise Conflict(f"step run {step_run} has already ended ({row.status})")
        _record.record_end(tracker, conn, step_run, status=body.status, outputs=outputs, logs=body.logs,
                           metrics=metrics, error=body.error, tracking=tracking,
                           bookkeeping=body.bookkeeping, upstream=upstream)
        return step_run

    _once(request, idempotency_key, f"recording the end of step run {step_run}", write)
    return json_response(StepRunOut(run_id=step_run))


@router.post("/{run_id}/contract", response_model=StepRunOut, dependencies=[Depends(no_nul)],
             summary="Record the pipeline's candidate model and evaluation metrics")
def contract(request: Request, body: Contract, run_id: str = RunId, idempotency_key: str | None = Key) -> Response:
    from conveyor.entities import now_ms
    from conveyor.pipelines import _record

    parent = _pipeline_run(request, run_id)
    for field, child in (("candidate_run", body.candidate_run), ("evaluation_run", body.evaluation_run)):
        if child is not None and tracker_parent(request, child) != run_id:
            raise ApiV1Error("INVALID", f"run {child} is not a step of pipeline run {run_id}", field=field)
    if body.uri is not None and not body.uri.startswith(f"runs:/{body.candidate_run}/"):
        raise ApiV1Error("INVALID", "the candidate must be a model package in the candidate step's run", field="uri")
    pipeline = parent.tags.get("conveyor.pipeline", parent.name)
    evaluation = _metrics(body.evaluation, "evaluation")
    stamp = now_ms()
    _once(request, idempotency_key, "recording the pipeline's candidate", lambda conn: _record.record_contract(
        _deps.tracker(request).store, conn, run_id, pipeline, uri=body.uri, eval_run=body.evaluation_run,
        cand_run=body.candidate_run, evaluation=evaluation, stamp=stamp))
    return json_response(StepRunOut(run_id=run_id))


@inputs_router.post("/dataset-inputs", response_model=DatasetInputOut, dependencies=[Depends(no_nul)],
                    summary="Pin a data set version as a pipeline input (a manifest over its content)")
def dataset_input(request: Request, body: DatasetInput) -> Response:
    from conveyor.data import parse_dataset_ref
    from conveyor.pipelines._datasets import resolve

    try:
        parsed = parse_dataset_ref(body.ref)
    except InvalidInput:
        raise ApiV1Error("INVALID", f"{body.ref[:100]!r} is not a data set reference (name@N)", field="ref") from None
    _deps.authorize(request, "data", parsed.name, "read")
    ref, output = resolve(_deps.tracker(request), str(parsed))
    return json_response(DatasetInputOut(ref=ref, output=output))


def tracker_parent(request: Request, run_id: str) -> str | None:
    return _deps.tracker(request).get_run(run_id).parent_id


__all__ = ["inputs_router", "router"]
