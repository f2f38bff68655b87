"""MLflow's logging endpoints: metrics, params, tags, batches, inputs and metric history.

Each call is committed before it is answered (one transaction), so a point the client
was told is logged survives a server crash; conveyor's own client buffers instead. The
durability of that commit is the one README's "What survives what" states per record:
metric points as the tracker's batches (on SQLite the WAL is not synced for them), params
and tags synced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conveyor.entities import now_ms
from conveyor.server import _convert
from conveyor.server._errors import ApiError, invalid
from conveyor.server._http import Fields, integer, items, key_values, number, run_id_of, text
from conveyor.server._paging import page, page_token
from conveyor.store import Point, validate_key
from conveyor.tracking import Tracker

MAX_BATCH = 1000


def _point(run_id: str, entry: Fields) -> Point:
    key = text(entry, "key", required=True)
    assert key is not None
    validate_key("metric", key)
    step = integer(entry, "step", default=0)
    stamp = integer(entry, "timestamp") or now_ms()
    assert step is not None
    return (run_id, key, number(entry, "value"), step, stamp)


def _require_live(tracker: Tracker, conn: Any, run_id: str) -> None:
    row = tracker.store.runs.require(conn, run_id)
    if row.deleted_at is not None:
        raise ApiError("INVALID_STATE", f"Run {run_id} is deleted; restore it before logging to it.")


def write(tracker: Tracker, run_id: str, points: Sequence[Point] = (), params: dict[str, str] | None = None,
          tags: dict[str, str] | None = None) -> None:
    # Points alone commit as the tracker's metric batches do (SQLite: WAL not synced, kept on a
    # process crash, may roll back on power loss; README "What survives what"); params and
    # tags, alone or in a batch with points, are synced before the answer.
    def body(conn: Any) -> None:
        _require_live(tracker, conn, run_id)
        if params:
            tracker.store.runs.log_params(conn, run_id, params)
        if tags:
            tracker.store.runs.set_tags(conn, run_id, tags)
        if points:
            tracker.store.metrics.write(conn, points)

    # once: metric points are appended, so a retry after a lost COMMIT acknowledgement must
    # not write them a second time
    tracker.store.transaction(body, durable=bool(params or tags), once=True, what=f"logging to run {run_id}")


def log_metric(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    run_id = run_id_of(fields)
    write(tracker, run_id, [_point(run_id, fields)])
    return {}


def log_param(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    key = text(fields, "key", required=True)
    value = fields.get("value")
    if value is None:
        raise invalid("Missing value for required parameter 'value'.")
    write(tracker, run_id_of(fields), params={str(key): str(value)})
    return {}


def set_tag(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    key = text(fields, "key", required=True)
    value = fields.get("value")
    if value is None:
        raise invalid("Missing value for required parameter 'value'.")
    run_id = run_id_of(fields)
    write(tracker, run_id, tags={str(key): str(value)})
    if key == "mlflow.runName":
        from sqlalchemy import update

        from conveyor.store import runs

        tracker.store.transaction(lambda conn: conn.execute(update(runs).where(runs.c.id == run_id)
                                                            .values(name=str(value))),
                                  what=f"renaming run {run_id}")
    return {}


def delete_tag(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    key = text(fields, "key", required=True)
    run_id = run_id_of(fields)

    def body(conn: Any) -> None:
        _require_live(tracker, conn, run_id)
        if key not in tracker.store.runs.tags_of(conn, [run_id]).get(run_id, {}):
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"No tag with name: {key} in run with id {run_id}")
        tracker.store.runs.delete_tag(conn, run_id, str(key))

    # once: a retry after a lost COMMIT acknowledgement would find the tag gone and answer 404
    tracker.store.transaction(body, once=True, what=f"deleting tag {key!r} of run {run_id}")
    return {}


def log_batch(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    run_id = run_id_of(fields)
    metrics, params, tags = items(fields, "metrics"), key_values(fields, "params"), key_values(fields, "tags")
    if len(metrics) + len(params) + len(tags) > MAX_BATCH:
        raise invalid(f"A batch logging request can contain at most {MAX_BATCH} metrics, params and tags together.")
    write(tracker, run_id, [_point(run_id, m) for m in metrics], params, tags)
    return {}


def log_inputs(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    """Accepted and checked; datasets are recorded as ``mlflow.dataset.<name>`` tags (digest)."""
    run_id = run_id_of(fields)
    tags: dict[str, str] = {}
    for entry in items(fields, "datasets"):
        dataset = entry.get("dataset")
        if not isinstance(dataset, dict) or not isinstance(dataset.get("name"), str):
            raise invalid("Invalid 'datasets' entry: each needs a dataset with a name.")
        tags[f"mlflow.dataset.{dataset['name']}"] = str(dataset.get("digest", ""))
    items(fields, "models")
    write(tracker, run_id, tags=tags)
    return {}


def get_history(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    run_id = run_id_of(fields)
    key = text(fields, "metric_key", required=True)
    max_results = integer(fields, "max_results", default=25000)
    assert max_results is not None and key is not None
    if max_results < 1:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results': at least 1.")
    offset = page_token(text(fields, "page_token"))
    def read(conn: Any) -> list[Any]:
        tracker.store.runs.require(conn, run_id)
        return tracker.store.metrics.history(conn, run_id, key)

    history = tracker.store.query(read, what=f"reading metric {key!r} of run {run_id}")  # retried through a blink
    chosen, token = page(history, offset, max_results)
    out: dict[str, Any] = {"metrics": [{"key": m.key, "value": _convert.metric_value(m.value),
                                        "timestamp": m.timestamp, "step": m.step} for m in chosen]}
    if token:
        out["next_page_token"] = token
    return out


def search_logged_models(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    """MLflow 3's logged models are not kept by conveyor: the search finds none.

    The mlflow client asks while resolving ``runs:/`` artifact URIs (``download_artifacts``);
    an empty answer makes it fall back to the run's own artifacts.
    """
    return {"models": []}
