"""``/api/v1/monitoring``: the prediction log and feedback (paged, by model, version and
time window), monitor evaluations with their per-feature drift statistics over time, and
alerts with their webhook deliveries and the retraining each one triggered.

The prediction log is read with :func:`conveyor.serving.read_prediction_log` (the Parquet
objects the serving app wrote), evaluations, alerts and retraining triggers from the
monitoring tables ``conveyor monitor history`` reads. Times are ms since the epoch; a
``since``/``until`` query value is ms or an ISO date/time (naive = UTC). Permission:
``read`` on kind ``model``, the monitored model's name; lists without a model leave out
models the caller may not read.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from conveyor.errors import InvalidInput, NotFound
from conveyor.server.api import _deps
from conveyor.server.api._listing import MAX_PAGE, allowed, make_token, offset_of

router = APIRouter(prefix="/monitoring", tags=["monitoring"])

Since = Query(None, max_length=64, description="From this instant (inclusive): ms or an ISO date/time.")
Until = Query(None, max_length=64, description="Up to this instant (exclusive): ms or an ISO date/time.")


# -- shapes -------------------------------------------------------------------------------------
class LogPage(BaseModel):
    model: str
    columns: list[str] = Field(description="request_id, row, timestamp, model, version, latency_ms (predictions) or "
                                           "label (feedback), then the inputs and outputs under their signature names.")
    rows: list[dict[str, Any]] = Field(description="One object per logged row, oldest first; timestamp in ms.")
    total: int = Field(description="Rows in the whole window.")
    next_page_token: str | None = None


class ColumnDriftOut(BaseModel):
    column: str
    kind: str = Field(description="numeric or categorical")
    role: str = Field(description="feature, target or prediction")
    method: str = Field(description="ks, wasserstein, psi, jensenshannon, chisquare, z …")
    threshold: float
    value: float | None = Field(description="The p-value or distance the method computed.")
    drifted: bool
    status: str = Field(description="ok, or empty when a side had no values")
    exact: bool
    n_reference: int
    n_current: int
    note: str = ""
    statistics: dict[str, Any] = Field(default_factory=dict)


class RuleOut(BaseModel):
    rule: str
    fired: bool
    value: float | None
    status: str


class EvaluationOut(BaseModel):
    id: int
    monitor: str
    model: str
    model_version: str | None
    created_at: int
    window_start: int | None
    window_end: int | None
    status: Literal["ok", "alert", "empty", "error"]
    metrics: dict[str, Any] = Field(description="Every metric the rules can name: drift_share, drift(col), "
                                                "missing_rate(col), accuracy, p95_latency_ms …")
    rules: list[RuleOut]
    drift: list[ColumnDriftOut] = Field(description="Per-feature drift statistics of this evaluation.")
    dataset_drift: bool | None
    report_digest: str | None = Field(description="The current window's summary in the artifact store.")
    error: str | None
    alert_ids: list[int]


class EvaluationDetail(EvaluationOut):
    drift_report: dict[str, Any] | None = Field(
        description="The whole drift report: prediction and label drift, data quality per column, reference.")


class EvaluationPage(BaseModel):
    evaluations: list[EvaluationOut]
    next_page_token: str | None = None


class DriftPoint(BaseModel):
    evaluation_id: int
    created_at: int
    window_start: int | None
    window_end: int | None
    model_version: str | None
    column: str
    method: str
    value: float | None
    threshold: float
    drifted: bool
    status: str


class DriftSeries(BaseModel):
    monitor: str
    points: list[DriftPoint] = Field(description="One point per evaluation and column, oldest first.")


class NotificationOut(BaseModel):
    id: int
    target: str
    status: str
    attempts: int
    http_status: int | None
    error: str | None
    created_at: int


class RetrainingOut(BaseModel):
    id: int
    model: str
    reason: str = Field(description="alert, retry, new_data, schedule, command …")
    alert_id: int | None
    status: str = Field(description="running, promoted, rejected, failed, abandoned, skipped")
    run_id: str | None = Field(description="The training run it started.")
    candidate_version: int | None = Field(description="The version it registered.")
    decision: str
    created_at: int
    finished_at: int | None
    holder: str | None = Field(None, description="host:pid of the process running it (its lease).")
    lease_until: int | None = None
    heartbeat_at: int | None = None


class AlertOut(BaseModel):
    id: int
    evaluation_id: int | None
    monitor: str
    model: str
    kind: str
    rule: str
    value: float | None
    message: str
    created_at: int
    notifications: list[NotificationOut]
    retrainings: list[RetrainingOut] = Field(description="The retraining this alert triggered (or why it did not).")


class AlertPage(BaseModel):
    alerts: list[AlertOut]
    next_page_token: str | None = None


class RetrainingPage(BaseModel):
    retrainings: list[RetrainingOut]
    next_page_token: str | None = None


# -- helpers ------------------------------------------------------------------------------------
def _instant(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    if value.lstrip("-").isdigit():
        return int(value)
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{field} {value!r} is not a time", field=field, value=value,
                           hint="write ms since the epoch or an ISO time such as 2026-11-27T09:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def _rows(frame: Any) -> list[dict[str, Any]]:
    """JSON-ready records: NaN → null, timestamps → ms, numpy values → Python."""
    if not len(frame):
        return []
    return list(json.loads(frame.to_json(orient="records", date_format="epoch", date_unit="ms")))


def _log_page(kind: str, model: str, version: str | None, since: str | None, until: str | None,
              with_feedback: bool, size: int, token: str | None, tracker: Any) -> LogPage:
    from conveyor.serving import read_feedback, read_prediction_log

    start, end = _instant(since, "since"), _instant(until, "until")
    offset = offset_of(token)
    if kind == "predictions":
        frame = read_prediction_log(model, version, start, end, with_feedback=with_feedback, tracker=tracker)
    else:
        frame = read_feedback(model, start, end, tracker=tracker)
        if version is not None:
            frame = frame[frame["version"].astype(str) == version]
    chosen = frame.iloc[offset : offset + size]
    more = offset + size < len(frame)
    return LogPage(model=model, columns=[str(c) for c in frame.columns], rows=_rows(chosen), total=len(frame),
                   next_page_token=make_token(offset + size) if more else None)


def _evaluation(row: Any, alert_ids: list[int], *, detail: bool = False) -> EvaluationOut:
    metrics = json.loads(row.metrics)
    report = metrics.pop("drift_report", None)
    values: dict[str, Any] = {
        "id": row.id, "monitor": row.monitor, "model": row.model, "model_version": row.model_version,
        "created_at": row.created_at, "window_start": row.window_start, "window_end": row.window_end,
        "status": row.status, "metrics": metrics, "rules": json.loads(row.rules),
        "drift": (report or {}).get("columns", []), "dataset_drift": (report or {}).get("dataset_drift"),
        "report_digest": row.report_digest, "error": row.error, "alert_ids": alert_ids,
    }
    if detail:
        return EvaluationDetail(**values, drift_report=report)
    return EvaluationOut(**values)


def _alert_ids(conn: Any, evaluation_ids: list[int]) -> dict[int, list[int]]:
    from conveyor.store import monitor_alerts

    out: dict[int, list[int]] = {}
    if evaluation_ids:
        query = select(monitor_alerts.c.evaluation_id, monitor_alerts.c.id).where(
            monitor_alerts.c.evaluation_id.in_(evaluation_ids)).order_by(monitor_alerts.c.id)
        for evaluation_id, alert_id in conn.execute(query).all():
            out.setdefault(int(evaluation_id), []).append(int(alert_id))
    return out


def _retraining(row: Any) -> RetrainingOut:
    return RetrainingOut.model_validate({k: row._mapping[k] for k in RetrainingOut.model_fields})


def _alerts(conn: Any, rows: list[Any]) -> list[AlertOut]:
    from conveyor.store import monitor_notifications, retrain_triggers

    ids = [r.id for r in rows]
    notes: dict[int, list[NotificationOut]] = {}
    triggered: dict[int, list[RetrainingOut]] = {}
    if ids:
        for n in conn.execute(select(monitor_notifications).where(monitor_notifications.c.alert_id.in_(ids))
                              .order_by(monitor_notifications.c.id)).all():
            notes.setdefault(n.alert_id, []).append(NotificationOut.model_validate(dict(n._mapping)))
        for t in conn.execute(select(retrain_triggers).where(retrain_triggers.c.alert_id.in_(ids))
                              .order_by(retrain_triggers.c.id)).all():
            triggered.setdefault(t.alert_id, []).append(_retraining(t))
    return [AlertOut(**{k: r._mapping[k] for k in ("id", "evaluation_id", "monitor", "model", "kind", "rule", "value",
                                                   "message", "created_at")},
                     notifications=notes.get(r.id, []), retrainings=triggered.get(r.id, [])) for r in rows]


def _visible(request: Request, model: str | None) -> None:
    _deps.authorize(request, "model", model, "read")


def _paged(request: Request, conn: Any, query: Any, size: int, token: str | None) -> tuple[list[Any], str | None]:
    """Rows of ``query`` the caller may read (by their ``model``), one page of them."""
    offset = offset_of(token)
    rows = [r for r in conn.execute(query).all() if allowed(request, "model", r.model, "read")]
    more = offset + size < len(rows)
    return rows[offset : offset + size], make_token(offset + size) if more else None


# -- the prediction log and feedback ------------------------------------------------------------
@router.get("/predictions", response_model=LogPage, summary="Logged predictions of a model in a time window")
def predictions(
    request: Request,
    model: str = Query(..., min_length=1, max_length=256, description="Served model name."),
    version: str | None = Query(None, max_length=64, description="Only rows answered by this version."),
    since: str | None = Since, until: str | None = Until,
    with_feedback: bool = Query(False, description="Add the label column from the feedback (null where none came)."),
    max_results: int = Query(100, ge=1, le=MAX_PAGE), page_token: str | None = Query(None),
) -> Any:
    _visible(request, model)
    return _log_page("predictions", model, version, since, until, with_feedback, max_results, page_token,
                     _deps.tracker(request))


@router.get("/feedback", response_model=LogPage, summary="Ground-truth labels posted for a model's answers")
def feedback(
    request: Request,
    model: str = Query(..., min_length=1, max_length=256),
    version: str | None = Query(None, max_length=64, description="Only labels of rows this version answered."),
    since: str | None = Since, until: str | None = Until,
    max_results: int = Query(100, ge=1, le=MAX_PAGE), page_token: str | None = Query(None),
) -> Any:
    _visible(request, model)
    return _log_page("feedback", model, version, since, until, False, max_results, page_token, _deps.tracker(request))


# -- evaluations and drift ----------------------------------------------------------------------
@router.get("/evaluations", response_model=EvaluationPage, summary="Monitor evaluations, newest first")
def list_evaluations(
    request: Request,
    monitor: str | None = Query(None, max_length=256), model: str | None = Query(None, max_length=256),
    status: Literal["ok", "alert", "empty", "error"] | None = Query(None),
    since: str | None = Since, until: str | None = Until,
    max_results: int = Query(50, ge=1, le=MAX_PAGE), page_token: str | None = Query(None),
) -> Any:
    from conveyor.store import monitor_evaluations as t

    if model is not None:
        _visible(request, model)
    query = select(t).order_by(t.c.created_at.desc(), t.c.id.desc())
    for column, value in (("monitor", monitor), ("model", model), ("status", status)):
        if value is not None:
            query = query.where(t.c[column] == value)
    start, end = _instant(since, "since"), _instant(until, "until")
    if start is not None:
        query = query.where(t.c.created_at >= start)
    if end is not None:
        query = query.where(t.c.created_at < end)
    tracker = _deps.tracker(request)

    def read(conn: Any) -> tuple[list[Any], str | None, dict[int, list[int]]]:
        rows, token = _paged(request, conn, query, max_results, page_token)
        return rows, token, _alert_ids(conn, [r.id for r in rows])

    rows, token, alerts = tracker.store.query(read, what="listing monitor evaluations")
    return EvaluationPage(evaluations=[_evaluation(r, alerts.get(r.id, [])) for r in rows], next_page_token=token)


@router.get("/evaluations/{evaluation_id}", response_model=EvaluationDetail,
            summary="One evaluation with its whole drift report")
def get_evaluation(request: Request, evaluation_id: int = Path(..., ge=1, le=2**62)) -> Any:
    from conveyor.store import monitor_evaluations as t

    tracker = _deps.tracker(request)

    def read(conn: Any) -> tuple[Any, dict[int, list[int]]]:
        row = conn.execute(select(t).where(t.c.id == evaluation_id)).first()
        if row is None:
            raise NotFound("monitor evaluation", evaluation_id, hint="GET /api/v1/monitoring/evaluations lists them")
        _visible(request, row.model)
        return row, _alert_ids(conn, [row.id])

    row, alerts = tracker.store.query(read, what=f"reading monitor evaluation {evaluation_id}")
    return _evaluation(row, alerts.get(row.id, []), detail=True)


@router.get("/drift", response_model=DriftSeries, summary="Per-feature drift statistics of a monitor over time")
def drift_series(
    request: Request,
    monitor: str = Query(..., min_length=1, max_length=256),
    column: str | None = Query(None, max_length=256, description="Only this feature."),
    since: str | None = Since, until: str | None = Until,
    max_results: int = Query(500, ge=1, le=MAX_PAGE, description="At most this many evaluations (the newest)."),
) -> Any:
    from conveyor.store import monitor_evaluations as t

    query = select(t).where(t.c.monitor == monitor).order_by(t.c.created_at.desc(), t.c.id.desc()).limit(max_results)
    start, end = _instant(since, "since"), _instant(until, "until")
    if start is not None:
        query = query.where(t.c.created_at >= start)
    if end is not None:
        query = query.where(t.c.created_at < end)
    tracker = _deps.tracker(request)
    rows = tracker.store.query(lambda conn: list(conn.execute(query).all()),
                               what=f"reading the drift history of monitor {monitor!r}")
    if not rows:
        known = tracker.store.query(
            lambda conn: conn.execute(select(t.c.id).where(t.c.monitor == monitor).limit(1)).first(),
            what=f"looking up monitor {monitor!r}")
        if known is None:
            raise NotFound("monitor", monitor, hint="GET /api/v1/monitoring/evaluations shows the monitors evaluated")
    points = []
    for row in reversed(rows):
        _visible(request, row.model)
        report = json.loads(row.metrics).get("drift_report") or {}
        for c in report.get("columns", []):
            if column is None or c["column"] == column:
                points.append(DriftPoint(
                    evaluation_id=row.id, created_at=row.created_at, window_start=row.window_start,
                    window_end=row.window_end, model_version=row.model_version, column=c["column"],
                    method=c["method"], value=c["value"], threshold=c["threshold"], drifted=c["drifted"],
                    status=c["status"]))
    return DriftSeries(monitor=monitor, points=points)


# -- alerts and retraining ----------------------------------------------------------------------
@router.get("/alerts", response_model=AlertPage, summary="Alerts with their deliveries and the retraining they triggered")
def list_alerts(
    request: Request,
    model: str | None = Query(None, max_length=256), monitor: str | None = Query(None, max_length=256),
    since: str | None = Since, until: str | None = Until,
    max_results: int = Query(50, ge=1, le=MAX_PAGE), page_token: str | None = Query(None),
) -> Any:
    from conveyor.store import monitor_alerts as t

    if model is not None:
        _visible(request, model)
    query = select(t).order_by(t.c.created_at.desc(), t.c.id.desc())
    for name, value in (("model", model), ("monitor", monitor)):
        if value is not None:
            query = query.where(t.c[name] == value)
    start, end = _instant(since, "since"), _instant(until, "until")
    if start is not None:
        query = query.where(t.c.created_at >= start)
    if end is not None:
        query = query.where(t.c.created_at < end)
    tracker = _deps.tracker(request)

    def read(conn: Any) -> AlertPage:
        rows, token = _paged(request, conn, query, max_results, page_token)
        return AlertPage(alerts=_alerts(conn, rows), next_page_token=token)

    return tracker.store.query(read, what="listing monitor alerts")


@router.get("/alerts/{alert_id}", response_model=AlertOut, summary="One alert")
def get_alert(request: Request, alert_id: int = Path(..., ge=1, le=2**62)) -> Any:
    from conveyor.store import monitor_alerts as t

    tracker = _deps.tracker(request)

    def read(conn: Any) -> AlertOut:
        row = conn.execute(select(t).where(t.c.id == alert_id)).first()
        if row is None:
            raise NotFound("alert", alert_id, hint="GET /api/v1/monitoring/alerts lists them")
        _visible(request, row.model)
        return _alerts(conn, [row])[0]

    return tracker.store.query(read, what=f"reading alert {alert_id}")


@router.get("/retrainings", response_model=RetrainingPage, summary="Retraining triggers, newest first")
def list_retrainings(
    request: Request, model: str | None = Query(None, max_length=256),
    max_results: int = Query(50, ge=1, le=MAX_PAGE), page_token: str | None = Query(None),
) -> Any:
    from conveyor.store import retrain_triggers as t

    if model is not None:
        _visible(request, model)
    query = select(t).order_by(t.c.created_at.desc(), t.c.id.desc())
    if model is not None:
        query = query.where(t.c.model == model)
    tracker = _deps.tracker(request)
    rows, token = tracker.store.query(lambda conn: _paged(request, conn, query, max_results, page_token),
                                      what="listing retraining triggers")
    return RetrainingPage(retrainings=[_retraining(r) for r in rows], next_page_token=token)
