"""Monitoring: every monitored model, and per model the drift of each feature over time,
reference vs current distributions of a chosen evaluation (``?evaluation=ID``), prediction
drift, live performance from feedback labels beside the offline metric, and the alerts with
the retraining chain each one triggered (trigger → pipeline run → candidate → gate →
alias)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conveyor.errors import ConveyorError, InvalidInput, NotFound
from conveyor.ui._access import allowed, require
from conveyor.ui._kit import histogram, line, svg
from conveyor.ui._render import render

NAV = ("Monitoring", "/monitoring")
PERFORMANCE = ("accuracy", "f1", "precision", "recall", "roc_auc", "mae", "rmse", "r2")
OPERATIONS = ("rows", "labelled_rows", "p95_latency_ms", "prediction_drift_value", "drift_share")
MAX_FEATURES = 40


def monitoring_page(request: Request) -> Response:
    from conveyor.store import MonitoringRepo

    tracker = request.app.state.tracker
    repo = MonitoringRepo()
    rows, alerts = tracker.store.query(lambda conn: (repo.evaluations(conn, limit=2000), repo.alerts(conn, limit=2000)),
                                       what="reading monitor evaluations")
    models: dict[str, dict[str, Any]] = {}
    for r in rows:  # newest first
        if not allowed(request, "model", r.model):
            continue
        entry = models.setdefault(r.model, {"model": r.model, "latest": r, "evaluations": 0, "alerts": 0,
                                            "monitors": set()})
        entry["evaluations"] += 1
        entry["monitors"].add(r.monitor)
    for a in alerts:
        if a.model in models:
            models[a.model]["alerts"] += 1
    return render(request, "monitoring.html", title="Monitoring", models=sorted(models.values(),
                                                                                key=lambda m: m["model"]))


def _config(tracker: Any, model: str, monitor: str | None) -> Any:
    settings = getattr(tracker, "project_settings", None)
    if settings is None:
        return None
    from conveyor.monitoring import load_monitors

    try:
        monitors = load_monitors(settings)[1]
    except ConveyorError:
        return None
    if monitor and monitor in monitors:
        return monitors[monitor]
    return next((c for c in monitors.values() if c.model == model), None)


def _window_reader(tracker: Any) -> Any:
    def load(model: str, version: str | None, since: int, until: int) -> Any:
        from conveyor.serving import read_prediction_log

        return read_prediction_log(model, version, since, until, with_feedback=True, tracker=tracker)

    return load


def _feature_series(rows: list[Any], columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per column: its drift value (p-value or distance) in every evaluation, oldest first."""
    from conveyor.monitoring._report_html import is_pvalue, ordered

    out = []
    for c in ordered(columns)[:MAX_FEATURES]:
        key = f"drift({c['column']})"
        points = [(r.window_end or r.created_at, r.metrics[key]) for r in reversed(rows)
                  if isinstance(r.metrics.get(key), (int, float))]
        if not points:
            continue
        kind = "p-value" if is_pvalue(c.get("method", "")) else "distance"
        out.append({"column": c, "points": points,
                    "chart": line(points, label=f"{c['column']} {c['method']}", y_label=kind,
                                  threshold=c.get("threshold"), x_label="end of window (UTC)")})
    return out


def _chain(tracker: Any, model: str, alerts: list[Any], triggers: list[Any]) -> list[dict[str, Any]]:
    """Each alert with the retraining triggers it started and what became of them."""
    from conveyor.registry import Registry

    registry = Registry(tracker)
    try:
        events = registry.history(model)
    except ConveyorError:
        events = []
    out = []
    for a in alerts:
        chain = []
        for t in triggers:
            if t.alert_id != a.id:
                continue
            moves = [e for e in events if e.alias and t.candidate_version is not None and e.at >= t.created_at
                     and e.to_value == str(t.candidate_version) and e.kind == "alias"]
            chain.append({"trigger": t, "moves": moves[:1]})
        out.append({"alert": a, "chain": chain})
    return out


def model_page(request: Request) -> Response:
    from conveyor.monitoring import report_data
    from conveyor.monitoring._report_html import _pvalue_distance, _statistic, ordered
    from conveyor.store import MonitoringRepo

    model = request.path_params["model"]
    require(request, "model", model)
    tracker = request.app.state.tracker
    chosen = request.query_params.get("evaluation")
    if chosen is not None and not chosen.isdigit():
        raise InvalidInput(f"evaluation {chosen!r} is not an evaluation id", field="evaluation", value=chosen,
                           hint="an integer from the evaluations table")
    monitor = request.query_params.get("monitor") or None
    repo = MonitoringRepo()
    rows, alerts, triggers = tracker.store.query(
        lambda conn: (repo.evaluations(conn, model=model, monitor=monitor, limit=200),
                      repo.alerts(conn, model=model, limit=200), repo.triggers(conn, model=model, limit=200)),
        what=f"reading the monitoring of {model!r}")
    if not rows:
        raise NotFound("monitored model", model, hint="/monitoring lists the models with monitor evaluations")
    config = _config(tracker, model, monitor)
    data = report_data(tracker, model, monitor=monitor, evaluation=int(chosen) if chosen else None,
                       load_window=_window_reader(tracker),
                       prediction=config.prediction if config is not None else "prediction",
                       score=config.score if config is not None else None)
    drift = data.get("drift") or {}
    columns = ordered(list(drift.get("columns") or []))
    quality = (drift.get("quality") or {}).get("columns", {})
    table = [{"c": c, "pd": _pvalue_distance(c), "stat": svg(_statistic(c)),
              "missing": quality.get(c["column"], {}).get("missing_rate")} for c in columns]
    distributions = [(c, histogram(data["distributions"][c["column"]], label=c["column"]))
                     for c in columns if c["column"] in data.get("distributions", {})]
    prediction = []
    for key, title in (("outputs", "model outputs"), ("scores", "positive-class scores")):
        part = (data.get("prediction") or {}).get(key)
        if part:
            prediction.append({"key": key, "title": title, "part": part,
                               "chart": histogram(part["distribution"], label=title)})
    scores = data.get("score_drift") or {}
    for c in scores.get("columns") or []:  # the monitor's score drift: verdicts, and the reference scores
        dist = (scores.get("distributions") or {}).get(c["column"])
        part = {"reference": f"scores of {scores.get('n_reference')} reference rows",
                "current": f"{scores.get('n_current')} window rows (not stored)", "drift": c, "stored": None}
        prediction.append({"key": "score-drift", "title": str(c["column"]), "part": part,
                           "chart": histogram(dist, label=str(c["column"]), names=("reference scores", ""))
                           if dist else ""})
    offline = data.get("offline") or {}
    performance, operations = [], []
    from conveyor.monitoring._report import SERIES_PREFIXES

    extra = sorted({k for r in rows for k, v in r.metrics.items() if k.startswith(SERIES_PREFIXES)
                    and k not in OPERATIONS and isinstance(v, (int, float)) and not isinstance(v, bool)})
    for group, keys in ((performance, PERFORMANCE), (operations, (*OPERATIONS, *extra))):
        for key in keys:
            points = [(r.window_end or r.created_at, r.metrics[key]) for r in reversed(rows)
                      if isinstance(r.metrics.get(key), (int, float))]
            if points:
                base = offline.get(key) if group is performance else None
                threshold = drift.get("drift_share_threshold") if key == "drift_share" else None
                group.append({"key": key, "points": points, "offline": base,
                              "chart": line(points, label=key, y_label=key, baseline=base, threshold=threshold,
                                            baseline_name="offline", x_label="end of window (UTC)")})
    return render(request, "monitor_model.html", title=f"Monitoring {model}", model=model, rows=rows,
                  evaluation=data.get("evaluation"), drift=drift, table=table, distributions=distributions,
                  prediction=prediction, features=_feature_series(rows, columns), performance=performance,
                  operations=operations, chain=_chain(tracker, model, alerts, triggers), triggers=triggers,
                  offline=offline)


routes = [
    Route("/monitoring", monitoring_page, methods=["GET"]),
    Route("/monitoring/{model}", model_page, methods=["GET"]),
]
