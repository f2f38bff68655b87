"""Writing step executions into the metadata store: one child run per step.

Each function is one write transaction, so a cache hit costs one commit and a crash
leaves either nothing or a RUNNING execution that the cache never reuses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection

from conveyor.blobs import MANIFEST_MEDIA_TYPE
from conveyor.entities import Artifact, RunStatus, now_ms
from conveyor.store import OutputRecord, PipelineRepo

repo = PipelineRepo()


def _param_text(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) else json.dumps(value, sort_keys=True)


@contextmanager
def transaction(tracker: Any, conn: Connection | None) -> Iterator[Connection]:
    """The caller's transaction when given (a cache hit is recorded in one), else a new one."""
    if conn is not None:
        yield conn
        return
    with tracker.store.write() as new:
        yield new


#: what a step run inherits from its pipeline run: where and from which commit it ran
CONTEXT_FIELDS = ("user", "host", "entry_point", "command", "git_commit", "git_branch", "git_dirty",
                  "python_version", "packages_digest")
#: the tag the registry reads for the data set versions a run was trained on
DATA_INPUTS_TAG = "conveyor.data.inputs"
#: the runner's own bookkeeping; kept as tags so a run's metrics are only what the step measured
BOOKKEEPING = ("cache_hit", "attempts", "duration_s")
#: on a candidate step run: the metric keys written there from the pipeline's evaluation step
EVALUATION_KEYS_TAG = "conveyor.evaluation_metrics"


def open_step(
    tracker: Any, experiment_id: int, parent_id: str, node: str, key: str, params: Mapping[str, Any], cache: str,
    *, conn: Connection | None = None, context: Mapping[str, Any] | None = None,
    data_inputs: Sequence[str] = (),
) -> str:
    """Create the step's RUNNING child run (with its pipeline run's git commit and context)
    and its execution row."""
    store = tracker.store

    def start(conn: Connection) -> str:
        run_id = store.runs.create(conn, experiment_id, name=node, parent_id=parent_id, **dict(context or {}))
        tags = {"conveyor.step": node, "conveyor.cache": cache, "conveyor.cache_key": key}
        if data_inputs:
            tags[DATA_INPUTS_TAG] = ",".join(data_inputs)
        store.runs.set_tags(conn, run_id, tags)
        if params:
            store.runs.log_params(conn, run_id, {k: _param_text(v) for k, v in params.items()})
        repo.start_execution(conn, run_id, parent_id, node, key, cached=cache == "hit")
        return str(run_id)

    if conn is not None:  # inside the caller's transaction (which retries, or not, as a whole)
        return start(conn)
    # retried through a database blink, once: a retry after a lost COMMIT acknowledgement
    # returns the first attempt's run id instead of creating a second child run
    return str(store.transaction(start, once=True, what=f"starting pipeline step {node!r}"))


def close_step(
    tracker: Any,
    run_id: str,
    *,
    status: str,
    outputs: Mapping[str, Mapping[str, str]],
    logs: str | None,
    metrics: Mapping[str, float],
    error: str | None = None,
    conn: Connection | None = None,
    tracking: Mapping[str, Any] | None = None,
    bookkeeping: Mapping[str, Any] | None = None,
) -> None:
    """Record outputs (as artifacts too), logs, metrics, what the step logged through the
    tracking API (``tracking``, the worker's record) and the end of the child run."""
    store = tracker.store
    sizes = {name: _size(tracker, o["digest"]) for name, o in outputs.items()}
    bookkeeping = dict(bookkeeping or {})
    if tracking and any(tracking.get(k) for k in ("params", "tags", "metrics", "artifacts")):
        bookkeeping["logged"] = 1  # a cache hit of this execution has something to copy
    with transaction(tracker, conn) as conn:
        if tracking:
            write_tracking(store, conn, run_id, tracking)
        if bookkeeping:
            store.runs.set_tags(conn, run_id, {f"conveyor.{k}": v for k, v in bookkeeping.items()})
        for name, out in outputs.items():
            store.artifacts.record(
                conn, Artifact(run_id, f"outputs/{name}", out["digest"], sizes[name], MANIFEST_MEDIA_TYPE, True)
            )
        if logs:
            store.artifacts.record(
                conn, Artifact(run_id, "logs/step.log", logs, _size(tracker, logs), "text/plain; charset=utf-8")
            )
        stamp = now_ms()
        if metrics:
            store.metrics.write(conn, [(run_id, k, float(v), 0, stamp) for k, v in metrics.items()])
        records = [OutputRecord(n, o["digest"], o["materializer"], o["type_name"]) for n, o in outputs.items()]
        repo.finish_execution(conn, run_id, status, records if status == "FINISHED" else ())
        store.runs.end(conn, run_id, RunStatus(status), error=error)


def record_hit(
    tracker: Any, conn: Connection, *, experiment_id: int, parent_id: str, node: str, key: str,
    params: Mapping[str, Any], context: Mapping[str, Any], data_inputs: Sequence[str], source_run: str,
    outputs: Mapping[str, Mapping[str, str]], metrics: Mapping[str, float], upstream: Sequence[str],
) -> str:
    """A cache hit in the caller's transaction: the step's FINISHED run copying what the reused
    execution ``source_run`` recorded, its outputs and lineage. The step's run id."""
    from conveyor.pipelines import _lineage

    run_id = open_step(tracker, experiment_id, parent_id, node, key, params, "hit", conn=conn,
                       context=context, data_inputs=data_inputs)
    copied = copy_tracking(tracker.store, conn, source_run, run_id, params)
    bookkeeping: dict[str, Any] = {"cache_hit": 1, "cached_from": source_run}
    if copied:
        bookkeeping["logged"] = 1
    close_step(tracker, run_id, status="FINISHED", outputs=outputs, logs=None, metrics=metrics, conn=conn,
               bookkeeping=bookkeeping)
    _lineage.record_step(conn, run_id, upstream)
    return str(run_id)


def record_end(
    tracker: Any, conn: Connection, run_id: str, *, status: str, outputs: Mapping[str, Mapping[str, str]],
    logs: str | None, metrics: Mapping[str, float], error: str | None, tracking: Mapping[str, Any] | None,
    bookkeeping: Mapping[str, Any], upstream: Sequence[str],
) -> None:
    """The end of a step that ran, in the caller's transaction (lineage too when it finished)."""
    from conveyor.pipelines import _lineage

    close_step(tracker, run_id, status=status, outputs=outputs, logs=logs, metrics=metrics, error=error,
               conn=conn, tracking=tracking, bookkeeping=bookkeeping)
    if status == "FINISHED":
        _lineage.record_step(conn, run_id, upstream)


def record_contract(
    store: Any, conn: Connection, run_id: str, pipeline: str, *, uri: str | None, eval_run: str | None,
    cand_run: str | None, evaluation: Mapping[str, float], stamp: int,
) -> None:
    """The pipeline's candidate and evaluation as tags and metrics (see ``_candidate``)."""
    parent_tags = {"conveyor.candidate": uri} if uri else {}
    if eval_run:
        parent_tags["conveyor.evaluation_run"] = eval_run
    if parent_tags:
        store.runs.set_tags(conn, run_id, parent_tags)
    if cand_run:
        tags = {"conveyor.pipeline_run": run_id, "conveyor.pipeline": pipeline}
        if eval_run:
            tags["conveyor.evaluation_run"] = eval_run
            # which metrics came from the evaluation: a later cache hit of this step copies
            # what the step logged itself, not an evaluation that may since have changed
            tags[EVALUATION_KEYS_TAG] = ",".join(sorted(evaluation))
        store.runs.set_tags(conn, cand_run, tags)
    points = [(r, k, float(v), 0, stamp) for k, v in evaluation.items() for r in {run_id, cand_run} - {None, eval_run}]
    if points:
        store.metrics.write(conn, points)


def write_tracking(store: Any, conn: Connection, run_id: str, record: Mapping[str, Any]) -> None:
    """What a step logged inside its worker (``StepTracker.record()``), into its run."""
    if record.get("params"):
        store.runs.log_params(conn, run_id, record["params"])
    if record.get("tags"):
        store.runs.set_tags(conn, run_id, record["tags"])
    if record.get("metrics"):
        store.metrics.write(conn, [(run_id, k, float(v), int(step), int(ts)) for k, v, step, ts in record["metrics"]])
    for path, digest, size, media_type, is_dir in record.get("artifacts") or ():
        store.artifacts.record(conn, Artifact(run_id, path, digest, int(size), media_type, bool(is_dir)))


def copy_tracking(store: Any, conn: Connection, source: str, run_id: str, params: Mapping[str, Any]) -> bool:
    """A cache hit: the new step run gets what the reused execution's step logged (its model
    package and other artifacts, params, user tags, latest metrics), so a hit reads the same.
    Whether there was anything (one tag read when there was not: cache hits stay cheap)."""
    old_tags = store.runs.tags_of(conn, [source]).get(source, {})
    if old_tags.get("conveyor.logged") != "1":
        return False
    for artifact in store.artifacts.list(conn, source, ""):
        if artifact.path.split("/", 1)[0] not in ("outputs", "logs"):
            store.artifacts.record(conn, Artifact(run_id, artifact.path, artifact.digest, artifact.size,
                                                  artifact.media_type, artifact.is_dir))
    old_params = store.runs.params_of(conn, [source]).get(source, {})
    extra = {k: v for k, v in old_params.items() if k not in params}
    if extra:
        store.runs.log_params(conn, run_id, extra)
    tags = {k: v for k, v in old_tags.items() if not k.startswith("conveyor.") and not k.startswith("mlflow.")}
    if tags:
        store.runs.set_tags(conn, run_id, tags)
    latest = store.metrics.latest_of(conn, [source]).get(source, {})
    stamp = now_ms()
    skip = set(BOOKKEEPING) | set(filter(None, old_tags.get(EVALUATION_KEYS_TAG, "").split(",")))
    points = [(run_id, k, float(v), 0, stamp) for k, v in latest.items() if k not in skip]
    if points:
        store.metrics.write(conn, points)
    return True


def _size(tracker: Any, digest: str) -> int:
    from conveyor.blobs import Digest

    try:
        return int(tracker.blobs.size(Digest.parse(digest)))
    except (OSError, KeyError):
        return 0


def tag(tracker: Any, run_id: str, tags: Mapping[str, str], *, conn: Connection | None = None) -> None:
    if conn is not None:
        tracker.store.runs.set_tags(conn, run_id, tags)
        return
    # setting the same tags again changes nothing: a plain retry through a database blink
    tracker.store.transaction(lambda new: tracker.store.runs.set_tags(new, run_id, tags),
                              what=f"tagging step run {run_id}")
