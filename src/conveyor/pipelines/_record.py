"""Writing step executions into the metadata store: one child run per step.

Each function is one write transaction, so a cache hit costs one commit and a crash
leaves either nothing or a RUNNING execution that the cache never reuses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
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


def open_step(
    tracker: Any, experiment_id: int, parent_id: str, node: str, key: str, params: Mapping[str, Any], cache: str,
    *, conn: Connection | None = None,
) -> str:
    """Create the step's RUNNING child run and its execution row."""
    store = tracker.store
    with transaction(tracker, conn) as conn:
        run_id = store.runs.create(conn, experiment_id, name=node, parent_id=parent_id)
        store.runs.set_tags(
            conn, run_id, {"conveyor.step": node, "conveyor.cache": cache, "conveyor.cache_key": key}
        )
        if params:
            store.runs.log_params(conn, run_id, {k: _param_text(v) for k, v in params.items()})
        repo.start_execution(conn, run_id, parent_id, node, key, cached=cache == "hit")
    return str(run_id)


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
) -> None:
    """Record outputs (as artifacts too), logs, metrics and the end of the child run."""
    store = tracker.store
    sizes = {name: _size(tracker, o["digest"]) for name, o in outputs.items()}
    with transaction(tracker, conn) as conn:
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


def _size(tracker: Any, digest: str) -> int:
    from conveyor.blobs import Digest

    try:
        return int(tracker.blobs.size(Digest.parse(digest)))
    except (OSError, KeyError):
        return 0


def tag(tracker: Any, run_id: str, tags: Mapping[str, str], *, conn: Connection | None = None) -> None:
    with transaction(tracker, conn) as conn:
        tracker.store.runs.set_tags(conn, run_id, tags)
