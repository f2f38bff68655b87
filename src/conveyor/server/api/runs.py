"""``/api/v1/runs``: create, read, end, delete and search runs; one batched write; metric history.

The batched write (``POST /runs/{run_id}/batch``) takes metric points, params, tags and
optionally the run's end in one transaction. With an ``Idempotency-Key`` header the key is
recorded in the same transaction (in ``metric_batches``, the table that already makes
spool replays idempotent), so a batch the client sends again after a lost answer is not
written twice: the answer says ``applied: false``.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from sqlalchemy import select
from starlette.responses import Response

from conveyor.entities import Metric, RunStatus, now_ms
from conveyor.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from conveyor.server import _possession as possession
from conveyor.server.api import _deps
from conveyor.server.api._models import (
    no_nul,
    IDEMPOTENCY_KEY,
    RUN_ID,
    BatchResult,
    Heartbeats,
    MetricHistory,
    MetricOut,
    RunBatch,
    RunCreate,
    RunEnd,
    RunOut,
    RunPage,
    RunSearch,
    RunUpdate,
    json_response,
)
from conveyor.store import DEFAULT_EXPERIMENT, search_runs, validate_key

router = APIRouter(prefix="/runs", tags=["runs"], dependencies=[Depends(no_nul)])

RunId = Path(pattern=RUN_ID, description="A run id (32 hexadecimal characters).")


def experiment_of(request: Request, run_id: str) -> int:
    """The experiment id of a run (what permissions are given on); a 404 when there is none."""
    from conveyor.store._runs import runs

    store = _deps.tracker(request).store
    found = store.query(lambda conn: conn.execute(select(runs.c.experiment_id).where(runs.c.id == run_id)).first(),
                        what=f"reading run {run_id}")
    if found is None:
        raise NotFound("run", run_id, hint="`conveyor runs list` shows the known runs")
    return int(found.experiment_id)


def authorize_run(request: Request, run_id: str, level: _deps.Level) -> None:
    _deps.authorize(request, "experiment", str(experiment_of(request, run_id)), level)


def _packages_of_readable_runs(request: Request, digest: str) -> set[str]:
    """{digest} when a run the caller may read names it as packages_digest (else empty)."""
    from conveyor.store._runs import runs as runs_table

    store = _deps.tracker(request).store
    with store.read() as conn:
        experiments = {str(r.experiment_id) for r in conn.execute(
            select(runs_table.c.experiment_id).where(runs_table.c.packages_digest == digest).distinct())}
    return {digest} if experiments and _deps.readable(request, "experiment", experiments) else set()


@router.post("", response_model=RunOut, status_code=201, summary="Start a RUNNING run")
def create(request: Request, body: RunCreate) -> Response:
    tracker = _deps.tracker(request)
    store = tracker.store
    name = body.experiment or DEFAULT_EXPERIMENT
    exp_id = _existing_experiment(store, name)  # a read: no write lock unless it is new
    if exp_id is None:
        _deps.authorize(request, "experiment", None, "edit")  # before anything is made
        try:
            exp_id = store.transaction(lambda conn: store.experiments.get_or_create(conn, name),
                                       what="creating an experiment")
        except AlreadyExists:  # another client's first run made it at the same moment
            exp_id = _existing_experiment(store, name)
            if exp_id is None:
                raise
        else:
            _deps.created(request, "experiment", str(exp_id))  # the creator manages it
    _deps.authorize(request, "experiment", str(exp_id), "edit")
    digest = body.packages_digest
    if body.packages is not None:
        digest = str(tracker.blobs.put_bytes(body.packages.encode()).digest)
        possession.remember(request, [digest])  # later runs may name it as packages_digest
    elif digest is not None:
        from conveyor.blobs import Digest

        if not tracker.blobs.exists(Digest.parse(digest)):
            raise InvalidInput(f"packages_digest {digest} is not stored", field="packages_digest", value=digest,
                               hint="send the packages text once as packages")
        # The run page shows that object's text: only what the caller sent or may read already.
        possession.require(request, {"packages_digest": Digest.parse(digest)}, "packages_digest",
                           lambda _: _packages_of_readable_runs(request, digest))
    fields = body.model_dump(exclude={"experiment", "run_id", "name", "tags", "parent_id", "packages",
                                      "packages_digest"})
    if _deps.user_name(request) is not None:
        fields["user"] = _deps.user_name(request)  # who signed in, not what the client says it is
    run_id = body.run_id or uuid.uuid4().hex

    def insert(conn: Any) -> Any:
        if body.parent_id is not None:
            store.runs.require(conn, body.parent_id)
        if store.runs.exists(conn, run_id):  # a retried create: the first one committed
            found = store.runs.get(conn, run_id)
            if found.experiment_id != exp_id:
                raise Conflict(f"run {run_id} exists in another experiment")
            return found
        run = store.runs.insert(conn, exp_id, name, name=body.name, parent_id=body.parent_id, id=run_id,
                                packages_digest=digest, **fields)
        if body.tags:
            store.runs.set_tags(conn, run.id, body.tags)
            run = replace(run, tags=dict(body.tags))
        return run

    run = store.transaction(insert, durable=False, what="creating a run")
    return json_response(RunOut.of(run), 201)


def _existing_experiment(store: Any, name: str) -> int | None:
    """The id of a usable experiment named ``name``, or None (missing or archived: the write
    path creates it or says why not)."""
    from conveyor.store._experiments import experiments

    row = store.query(lambda conn: conn.execute(select(experiments.c.id, experiments.c.archived)
                                                .where(experiments.c.name == name)).first(), what="reading an experiment")
    return None if row is None or row.archived else int(row.id)


@router.post("/search", response_model=RunPage, summary="Runs matching a filter, one page at a time")
def search(request: Request, body: RunSearch) -> Response:
    tracker = _deps.tracker(request)
    store = tracker.store
    offset = _offset(body.page_token)

    def read(conn: Any) -> list[Any]:  # reads only (the role checks read too): retried through a blink
        ids: list[int] | None = None
        if body.experiments is not None:
            ids = [store.experiments.get(conn, n).id for n in body.experiments]
        for exp in ids if ids is not None else [None]:
            _deps.authorize(request, "experiment", None if exp is None else str(exp), "read")
        if ids is None and _deps.user(request) is not None:  # every experiment the caller may read
            every = [e.id for e in store.experiments.list(conn, include_archived=True)]
            ids = sorted(int(i) for i in _deps.readable(request, "experiment", every))
        return search_runs(conn, experiment_ids=ids, filter=body.filter, order_by=body.order_by,
                           max_results=body.max_results + 1, offset=offset, include_deleted=body.include_deleted,
                           timeout=tracker.settings.search_timeout)

    found = store.query(read, what="searching runs")
    more = len(found) > body.max_results
    token = _token(offset + body.max_results) if more else None
    return json_response(RunPage(runs=[RunOut.of(r) for r in found[: body.max_results]], next_page_token=token))


@router.post("/heartbeat", status_code=204, summary="Mark RUNNING runs alive (see `conveyor runs gc-stale`)")
def heartbeat(request: Request, body: Heartbeats) -> Response:
    store = _deps.tracker(request).store
    for run_id in body.run_ids:
        if not isinstance(run_id, str) or not run_id.isalnum() or len(run_id) > 32:
            raise InvalidInput(f"{run_id!r} is not a run id", field="run_ids", value=run_id)
    for exp in {experiment_of(request, r) for r in body.run_ids}:
        _deps.authorize(request, "experiment", str(exp), "edit")
    if body.run_ids:
        store.transaction(lambda conn: store.runs.heartbeat(conn, body.run_ids), durable=False, what="heartbeat")
    return Response(status_code=204)


@router.get("/{run_id}", response_model=RunOut, summary="One run with its params, tags and latest metrics")
def get(request: Request, run_id: str = RunId) -> Response:
    authorize_run(request, run_id, "read")
    return json_response(RunOut.of(_deps.tracker(request).get_run(run_id)))


@router.patch("/{run_id}", response_model=RunOut, summary="End a run, or delete or restore it",
              responses={409: {"description": "The run has already ended"}})
def update(request: Request, body: RunUpdate, run_id: str = RunId) -> Response:
    authorize_run(request, run_id, "edit")
    tracker = _deps.tracker(request)
    store = tracker.store

    def change(conn: Any) -> None:
        if body.deleted is not None:
            store.runs.set_deleted(conn, [run_id], body.deleted)
        if body.status is not None:
            store.runs.end(conn, run_id, RunStatus(body.status), error=body.error)

    store.transaction(change, what="changing a run")
    return json_response(RunOut.of(tracker.get_run(run_id)))


@router.delete("/{run_id}", status_code=204, summary="Mark a run deleted (PATCH deleted=false restores it)")
def delete(request: Request, run_id: str = RunId) -> Response:
    authorize_run(request, run_id, "edit")
    _deps.tracker(request).delete_runs([run_id])
    return Response(status_code=204)


@router.post("/{run_id}/restore", response_model=RunOut, summary="Undo a delete")
def restore(request: Request, run_id: str = RunId) -> Response:
    authorize_run(request, run_id, "edit")
    tracker = _deps.tracker(request)
    tracker.restore_runs([run_id])
    return json_response(RunOut.of(tracker.get_run(run_id)))


@router.post("/{run_id}/batch", response_model=BatchResult,
             summary="Write metric points, params, tags (and optionally the end) of a run in one transaction",
             responses={409: {"description": "A param changed value, the run is deleted, or it ended already"}})
def batch(
    request: Request,
    body: RunBatch,
    run_id: str = RunId,
    idempotency_key: str | None = Header(
        None, alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY,
        description="A key the client makes per batch (a uuid4 hex): the same key again writes nothing."),
) -> Response:
    authorize_run(request, run_id, "edit")
    store = _deps.tracker(request).store
    from conveyor.store._metrics import metric_batches

    points = [(run_id, validate_key("metric", p.key), p.value, p.step, p.timestamp) for p in body.metrics]

    def write(conn: Any) -> BatchResult:
        if idempotency_key is not None and conn.execute(
                select(metric_batches.c.id).where(metric_batches.c.id == idempotency_key)).first() is not None:
            return BatchResult(applied=False, metrics=0)
        state = store.runs.require(conn, run_id)
        if state.deleted_at is not None:
            raise Conflict(f"run {run_id} is deleted; restore it before logging to it")
        if body.params:
            store.runs.log_params(conn, run_id, body.params)
        if body.tags:
            store.runs.set_tags(conn, run_id, body.tags)
        if points:
            store.metrics.write(conn, points)
        if body.end is not None:
            store.runs.end(conn, run_id, RunStatus(body.end.status), error=body.end.error)
        if idempotency_key is not None:
            conn.execute(metric_batches.insert(), {"id": idempotency_key, "run_id": run_id, "points": len(points),
                                                  "written_at": now_ms()})
        return BatchResult(applied=True, metrics=len(points))

    durable = bool(body.params or body.tags)
    return json_response(store.transaction(write, durable=durable, what="writing a batch"))


@router.post("/{run_id}/end", response_model=RunOut, summary="End a RUNNING run",
             responses={409: {"description": "The run has already ended"}})
def end(request: Request, body: RunEnd, run_id: str = RunId) -> Response:
    authorize_run(request, run_id, "edit")
    tracker = _deps.tracker(request)
    store = tracker.store
    store.transaction(lambda conn: store.runs.end(conn, run_id, RunStatus(body.status), error=body.error),
                      what="ending a run")
    return json_response(RunOut.of(tracker.get_run(run_id)))


@router.delete("/{run_id}/tags/{key:path}", status_code=204, summary="Remove a tag from a run")
def delete_tag(request: Request, key: str, run_id: str = RunId) -> Response:
    authorize_run(request, run_id, "edit")
    validate_key("tag", key)
    _deps.tracker(request).delete_tag(run_id, key)
    return Response(status_code=204)


@router.get("/{run_id}/metrics/{key:path}", response_model=MetricHistory,
            summary="The history of one metric, in step order, optionally downsampled")
def history(
    request: Request,
    key: str,
    run_id: str = RunId,
    max_points: int | None = Query(None, ge=2, le=1_000_000, description=(
        "Return at most this many points: the steps are cut into max_points/2 equal spans (the buckets "
        "of the UI's charts) and the lowest and highest point of each are kept (in step order), so "
        "spikes survive.")),
) -> Response:
    authorize_run(request, run_id, "read")
    validate_key("metric", key)
    points = _deps.tracker(request).metric_history(run_id, key)
    kept = downsample(points, max_points) if max_points is not None else points
    return json_response(MetricHistory(key=key, points=[MetricOut.of(m) for m in kept], total=len(points)))


def downsample(points: Sequence[Metric], max_points: int) -> list[Metric]:
    """At most ``max_points`` of the stored points (in step order): the lowest and the
    highest of each of ``max_points // 2`` equal spans of step — the buckets of
    ``Tracker.metric_series`` and the UI's charts (``conveyor.tracking.extremes``)."""
    from conveyor.tracking import extremes

    kept = extremes([p.step for p in points], [p.value for p in points], max_points // 2)
    return [points[i] for i in kept]


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, TypeError, KeyError):
        offset = None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0 or offset > 2**40:
        raise InvalidInput(f"page_token {token!r} is not one this server made", field="page_token", value=token,
                           hint="pass back the next_page_token of a previous answer")
    return offset
