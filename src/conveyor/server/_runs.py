"""MLflow's run endpoints (create, update, get, delete, restore, search) over conveyor's runs.

A run the mlflow client creates here is an ordinary conveyor run: ``conveyor runs list``
shows it, ``conveyor.search_runs`` finds it, and a run conveyor logged is visible to mlflow.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from conveyor.entities import Run, RunStatus, now_ms
from conveyor.server import _access, _convert
from conveyor.server._errors import ApiError, invalid
from conveyor.server._experiments import experiment_id
from conveyor.server._http import Fields, integer, key_values, run_id_of, strings, text
from conveyor.server._paging import make_token, page_token
from conveyor.store import latest_metrics, runs, search_runs
from conveyor.tracking import Tracker

STATUSES = {s.value for s in RunStatus}
MAX_RESULTS = 50000


def get_run(tracker: Tracker, run_id: str) -> Run:
    def body(conn: Any) -> Run:
        metrics = tracker.store.metrics.latest_of(conn, [run_id]).get(run_id, {})
        return tracker.store.runs.get(conn, run_id, metrics=metrics)

    return tracker.store.query(body, what=f"reading run {run_id}")


def _latest(tracker: Tracker, run_ids: list[str]) -> dict[str, dict[str, tuple[int, int]]]:
    out: dict[str, dict[str, tuple[int, int]]] = {}
    if not run_ids:
        return out
    query = select(latest_metrics.c.run_id, latest_metrics.c.key, latest_metrics.c.step, latest_metrics.c.timestamp)
    rows = tracker.store.query(lambda conn: conn.execute(query.where(latest_metrics.c.run_id.in_(run_ids))).all(),
                               what="reading latest metrics")
    for row in rows:
        out.setdefault(row.run_id, {})[row.key] = (row.step, row.timestamp)
    return out


def render(tracker: Tracker, run: Run) -> dict[str, Any]:
    return _convert.run(run, _latest(tracker, [run.id]).get(run.id))


def create(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    exp = experiment_id(tracker, fields.get("experiment_id") or _convert.MLFLOW_DEFAULT_ID)
    if exp.archived:
        raise ApiError("INVALID_STATE", f"Experiment {exp.id} ('{exp.name}') is deleted; restore it first.")
    tags = key_values(fields, "tags")
    name = text(fields, "run_name") or tags.get("mlflow.runName")
    start = integer(fields, "start_time") or now_ms()
    # the authenticated caller, not the client's $USER; with authentication off, what the client says
    user = _access.user_name() or text(fields, "user_id") or tags.get("mlflow.user") or ""
    if _access.user_name() is not None and "mlflow.user" in tags:
        tags["mlflow.user"] = user
    parent = tags.get("mlflow.parentRunId")

    def insert(conn: Any) -> str:
        known = parent if parent is not None and tracker.store.runs.exists(conn, parent) else None
        run = tracker.store.runs.insert(conn, exp.id, exp.name, name=name, start_time=start, user=user,
                                        parent_id=known)
        if tags:
            tracker.store.runs.set_tags(conn, run.id, tags)
        return str(run.id)

    # once: a retry after a lost COMMIT acknowledgement answers with the run already created
    run_id = tracker.store.transaction(insert, once=True, what="creating a run")
    return {"run": render(tracker, get_run(tracker, run_id))}


def update_(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    run_id = run_id_of(fields)
    status = text(fields, "status")
    if status is not None and status not in STATUSES:
        raise invalid(f"Invalid value {status!r} for parameter 'status': one of {', '.join(sorted(STATUSES))}.")
    end_time = integer(fields, "end_time")
    name = text(fields, "run_name")

    def change(conn: Any) -> None:  # idempotent: setting the same values again changes nothing
        current = tracker.store.runs.require(conn, run_id)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = name
        if status is not None and status != current.status:
            values["status"] = status
            values["end_time"] = None if status == "RUNNING" else (end_time or now_ms())
        elif end_time is not None and status != "RUNNING":
            values["end_time"] = end_time
        if values:
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
        if name is not None:
            tracker.store.runs.set_tags(conn, run_id, {"mlflow.runName": name})

    tracker.store.transaction(change, what=f"updating run {run_id}")
    return {"run_info": _convert.run_info(get_run(tracker, run_id))}


def get(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    return {"run": render(tracker, get_run(tracker, run_id_of(fields)))}


def delete(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    run_id = run_id_of(fields)
    get_run(tracker, run_id)
    tracker.delete_runs([run_id])
    return {}


def restore(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    run_id = run_id_of(fields)
    get_run(tracker, run_id)
    tracker.restore_runs([run_id])
    return {}


def search(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    ids = [experiment_id(tracker, e, field="experiment_ids").id for e in strings(fields, "experiment_ids")]
    if not ids and _access.current().enforced:  # every experiment: every one the caller may read
        every = [e.id for e in tracker.list_experiments(include_archived=True)]
        allowed = _access.readable("experiment", every)
        ids = [e for e in every if str(e) in allowed]
        if not ids:
            return {"runs": []}
    view = str(fields.get("run_view_type") or "ACTIVE_ONLY")
    if view not in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL", "1", "2", "3"):
        raise invalid(f"Invalid value {view!r} for parameter 'run_view_type': ACTIVE_ONLY, DELETED_ONLY or ALL.")
    max_results = integer(fields, "max_results", default=1000)
    assert max_results is not None
    if not 1 <= max_results <= MAX_RESULTS:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results': between 1 and {MAX_RESULTS}.")
    offset = page_token(text(fields, "page_token"))
    order_by = [o.replace("attributes.", "", 1) if o.startswith("attributes.") else o
                for o in strings(fields, "order_by")]
    found = tracker.store.query(  # a read: retried through a database blink
        lambda conn: search_runs(conn, experiment_ids=ids or None, filter=text(fields, "filter") or "",
                                 order_by=order_by, max_results=max_results + 1, offset=offset,
                                 include_deleted=view not in ("ACTIVE_ONLY", "1")), what="searching runs")
    if view in ("DELETED_ONLY", "2"):
        found = [r for r in found if r.deleted]
    more = len(found) > max_results
    found = found[:max_results]
    latest = _latest(tracker, [r.id for r in found])
    out: dict[str, Any] = {"runs": [_convert.run(r, latest.get(r.id)) for r in found]}
    if more:
        out["next_page_token"] = make_token(offset + max_results)
    return out
