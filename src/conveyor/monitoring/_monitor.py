"""Evaluating a monitor once: window → drift, quality, live performance → rules → alerts.

Every evaluation is stored (status ``ok``, ``alert``, ``empty`` or ``error`` and all its
metrics); each fired rule becomes an alert, logged and POSTed to the webhook in the
background; with ``retrain = true`` an alert triggers the retraining policy.

The prediction log belongs to ``conveyor.serving``, one layer up, so reading a window is
a hook (``MonitorHooks.load_window``) the edges wire to
``conveyor.serving.read_prediction_log(model, version, since, until, with_feedback=True)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conveyor.entities import now_ms
from conveyor.errors import ConveyorError, InvalidInput, NotFound
from conveyor.monitoring._config import MonitorConfig, MonitoringDefaults, parse_duration
from conveyor.monitoring._drift import DriftReport, compare
from conveyor.monitoring._performance import score_frame
from conveyor.monitoring._production import SkewCheck, latency_ratio, model_age_days, nonfinite_rate
from conveyor.monitoring._reference import reference_summary
from conveyor.monitoring._retrain import ContinuousTrainer, RetrainHook
from conveyor.monitoring._rules import RuleResult
from conveyor.monitoring._scores import ScoreDrift
from conveyor.monitoring._summary import summarize
from conveyor.monitoring._webhook import Delivery, Notifier
from conveyor.store import MonitoringRepo, TriggerRow

log = logging.getLogger("conveyor.monitoring")
#: Columns of the prediction log that are bookkeeping, not model inputs.
LOG_COLUMNS = frozenset({"request_id", "row", "timestamp", "model", "version", "latency_ms", "label"})


@dataclass(frozen=True)
class MonitorHooks:
    """What monitoring needs from the layers above it.

    ``load_window(model, version, since_ms, until_ms)`` → the prediction log of that window
    with feedback labels (a DataFrame); ``load_reference(key)`` → the reference table
    (default ``conveyor.data.load``); ``retrain(model, trigger_id)`` → ``RetrainOutcome``.
    """

    load_window: Callable[[str, str | None, int, int], Any] | None = None
    load_reference: Callable[[str], Any] | None = None
    retrain: RetrainHook | None = None


@dataclass(frozen=True)
class Evaluation:
    id: int
    monitor: str
    model: str
    model_version: str | None
    status: str
    metrics: dict[str, Any]
    rules: tuple[RuleResult, ...]
    alert_ids: tuple[int, ...] = ()
    triggers: tuple[TriggerRow, ...] = ()
    drift: DriftReport | None = field(default=None, repr=False)
    error: str | None = None
    #: prediction drift on scores (see ``_scores``): kind, reference, and one verdict per score column
    score_drift: dict[str, Any] | None = field(default=None, repr=False)
    #: why this evaluation asked for a retraining (alert, retry, new_data, schedule), or None
    retrain_reason: str | None = None


class Monitoring:
    """Evaluates monitors against one project's stores.

    Example::

        monitoring = Monitoring(tracker, defaults, MonitorHooks(load_window=read_window))
        evaluation = monitoring.evaluate(monitors["churn"])
        evaluation.status, evaluation.metrics["drift_share"]
    """

    #: True on a server evaluating for a remote client: the retraining policy is decided here
    #: (``Evaluation.retrain_reason``) but the client runs its hook (training code never runs on the server)
    defer_retrain = False

    def __new__(cls, tracker: Any, defaults: MonitoringDefaults | None = None,
                hooks: MonitorHooks | None = None) -> Monitoring:
        """A :class:`conveyor.monitoring._remote.RemoteMonitoring` when ``tracker`` talks to a
        ``conveyor server`` (remote mode): the server evaluates against its stores."""
        if cls is Monitoring and getattr(tracker, "http", None) is not None:
            from conveyor.monitoring._remote import RemoteMonitoring

            return object.__new__(RemoteMonitoring)
        return object.__new__(cls)

    def __init__(self, tracker: Any, defaults: MonitoringDefaults | None = None,
                 hooks: MonitorHooks | None = None) -> None:
        self.tracker = tracker
        self.defaults = defaults or MonitoringDefaults()
        self.hooks = hooks or MonitorHooks()
        self.repo = MonitoringRepo()
        self._notifiers: dict[str | None, Notifier] = {}
        self._skew = SkewCheck(tracker)
        self._scores = ScoreDrift(tracker, self._skew.model, self._load_reference)
        self._created: dict[str, int] = {}  # model → registration time (ms) of the served version

    # -- notifications ------------------------------------------------------------------------------
    def notifier(self, url: str | None) -> Notifier:
        if url not in self._notifiers:
            d = self.defaults
            self._notifiers[url] = Notifier(url, retries=d.webhook_retries, backoff=d.webhook_backoff,
                                            timeout=d.webhook_timeout, record=self._record_delivery)
        return self._notifiers[url]

    def _record_delivery(self, alert_id: int, delivery: Delivery) -> None:
        self.tracker.store.transaction(
            lambda conn: self.repo.add_notification(
                conn, alert_id=alert_id, target=delivery.target, status=delivery.status, attempts=delivery.attempts,
                http_status=delivery.http_status, error=delivery.error),
            once=True, what="recording a webhook delivery")

    def wait(self, timeout: float | None = None) -> bool:
        """Let background webhook deliveries and retrainings finish (bounded by ``timeout``)."""
        done = all([n.wait(timeout) for n in self._notifiers.values()])
        return done

    def alert(self, config: MonitorConfig, kind: str, rule: str, value: float | None, message: str,
              evaluation_id: int | None = None) -> int:
        """Record an alert, log it and send it to the monitor's webhook."""
        alert_id = self.tracker.store.transaction(
            lambda conn: self.repo.add_alert(conn, evaluation_id=evaluation_id, monitor=config.name,
                                             model=config.model, kind=kind, rule=rule, value=value, message=message),
            once=True, what="recording an alert")
        payload = {"alert_id": alert_id, "monitor": config.name, "model": config.model, "kind": kind,
                   "rule": rule, "value": value, "message": message, "evaluation_id": evaluation_id}
        self.notifier(config.webhook or self.defaults.webhook).notify(alert_id, payload)
        return alert_id

    def trainer(self, config: MonitorConfig) -> ContinuousTrainer:
        cooldown = parse_duration(config.cooldown or self.defaults.cooldown, field="cooldown")

        def failed(model: str, decision: str, trigger_id: int) -> None:
            self.alert(config, "retrain_failed", f"retraining trigger {trigger_id}", None,
                       f"retraining of {model} failed (trigger {trigger_id}): {decision}")

        d = self.defaults
        return ContinuousTrainer(self.tracker, self.hooks.retrain, cooldown=cooldown, on_failure=failed,
                                 lease=parse_duration(d.retrain_lease, field="monitoring.retrain_lease"),
                                 backoff=parse_duration(d.retrain_backoff, field="monitoring.retrain_backoff"))

    # -- evaluation ---------------------------------------------------------------------------------
    def evaluate(self, config: MonitorConfig, *, current: Any = None, until_ms: int | None = None,
                 since_ms: int | None = None) -> Evaluation:
        """Evaluate ``config`` once over its window ending at ``until_ms`` (default now) and
        starting ``config.window`` earlier, or at ``since_ms`` when given (a shorter span: the
        stored window is then the one read, so the report re-reads the same rows), or over
        ``current`` (a DataFrame) when given; store the result; alert and maybe retrain."""
        until = until_ms if until_ms is not None else now_ms()
        since = until - int(config.window_seconds * 1000) if since_ms is None else int(since_ms)
        if since > until:
            raise InvalidInput(f"since_ms {since_ms} is after until_ms {until}", field="since_ms", value=since_ms,
                               hint="give the start of the window to evaluate, at or before its end")
        version: str | None = None
        data_versions: tuple[str, ...] = ()
        try:
            version, data_versions = self._served_version(config)
            ref_key = config.reference or (data_versions[0] if data_versions else None)
            if ref_key is None:
                raise InvalidInput(
                    f"monitor {config.name!r} has no reference and {config.model} has no training data set",
                    field=f"monitors.{config.name}.reference", hint='set reference = "data:/<name>@<version>"')
            window = current if current is not None else self._window(config, version, since, until)
            metrics, drift = self._measure(config, ref_key, window)
            metrics.update(self._production(config, window, until, metrics.get("p95_latency_ms")))
            score_metrics, scores = self._scores.measure(window, config.model, version, ref_key,
                                                         method=config.method, threshold=config.threshold)
            metrics.update(score_metrics)
            metrics["new_data_versions"] = _newer_versions(data_versions, self.tracker)
        except ConveyorError as exc:
            return self._store(config, version, since, until, "error", {}, [], None, error=exc.message)
        rules = [rule.evaluate(metrics) for rule in config.parsed_rules()]
        status = "empty" if not metrics.get("rows") else "alert" if any(r.fired for r in rules) else "ok"
        return self._store(config, version, since, until, status, metrics, rules, drift, data_versions=data_versions,
                           scores=scores)

    def _load_reference(self, key: str) -> Any:
        if self.hooks.load_reference is not None:
            return self.hooks.load_reference(key)
        from conveyor.data import load

        return load(key, tracker=self.tracker)

    def _retrain_reason(self, config: MonitorConfig, alerted: bool, data_versions: tuple[str, ...]) -> str | None:
        """alert > retry of a failed one > new data > schedule: the first that applies names the trigger."""
        if alerted and config.retrain:
            return "alert"
        if (config.retrain or config.retrain_every or config.retrain_on_new_data) and \
                self.trainer(config).retry_due(config.model, self.defaults.retrain_retries):
            return "retry"
        if config.retrain_on_new_data and _newer_data(data_versions, self.tracker):
            return "new_data"
        if config.retrain_every:
            last = self.tracker.store.query(lambda conn: self.repo.last_started(conn, config.model),
                                            what=f"reading the last retraining of {config.model!r}")
            if last is None or now_ms() - last >= parse_duration(config.retrain_every) * 1000:
                return "schedule"
        return None

    def _served_version(self, config: MonitorConfig) -> tuple[str | None, tuple[str, ...]]:
        from conveyor.registry import Registry

        try:
            mv = Registry(self.tracker).get(f"models:/{config.model}@{config.alias}")
        except (NotFound, ConveyorError):
            self._created.pop(config.model, None)
            return None, ()
        self._created[config.model] = mv.created_at
        return str(mv.version), tuple(mv.data_versions)

    def _production(self, config: MonitorConfig, window: Any, until: int, p95: float | None) -> dict[str, Any]:
        """Skew, non-finite predictions, model age and latency regression (see ``_production``)."""
        features = [c for c in window.columns if c not in LOG_COLUMNS and c != config.prediction]
        out: dict[str, Any] = self._skew.measure(window, config.model, prediction=config.prediction,
                                                 features=features, sample=config.skew_sample,
                                                 tolerance=config.skew_tolerance)
        out["nonfinite_prediction_rate"] = nonfinite_rate(window, config.prediction)
        out["model_age_days"] = model_age_days(self._created.get(config.model), until)
        previous = None
        recent = self.tracker.store.query(lambda conn: self.repo.evaluations(conn, monitor=config.name, limit=5),
                                          what=f"reading the evaluations of monitor {config.name!r}")
        for row in recent:
            if row.status in ("ok", "alert") and (row.metrics or {}).get("p95_latency_ms") is not None:
                previous = row.metrics["p95_latency_ms"]
                break
        out["p95_latency_ratio"] = latency_ratio(p95, previous)
        return out

    def _window(self, config: MonitorConfig, version: str | None, since: int, until: int) -> Any:
        if self.hooks.load_window is None:
            raise InvalidInput("no prediction-log reader is wired into monitoring", field="load_window",
                               hint="use `conveyor monitor run` or pass MonitorHooks(load_window=...)")
        try:
            return self.hooks.load_window(config.model, version, since, until)
        except ConveyorError:
            raise
        except Exception as exc:  # an unreadable window is this evaluation's error, not the end of `watch`
            log.exception("monitor %s: reading the prediction log failed", config.name)
            raise InvalidInput(f"the prediction log of {config.model} could not be read: {type(exc).__name__}: {exc}",
                               field="window", hint="see the log for the traceback") from None

    def _measure(self, config: MonitorConfig, ref_key: str, window: Any) -> tuple[dict[str, Any], DriftReport | None]:
        reference = reference_summary(self.tracker, ref_key, load=self.hooks.load_reference)
        metrics: dict[str, Any] = score_frame(window, prediction=config.prediction, score=config.score)
        metrics.setdefault("labelled_rows", 0.0)
        if not len(window):
            return metrics, None
        features = config.columns or [c for c in reference.columns if c != config.target and c not in LOG_COLUMNS]
        absent = [c for c in features if c not in window.columns]
        if absent:
            raise InvalidInput(f"the window lacks reference columns {absent}", field="columns", value=absent,
                               hint=f"the window has {sorted(window.columns)}; set columns = [...] on the monitor")
        frame = window[features].copy()
        names = list(features)
        if config.target and config.target in reference.columns and "label" in window:
            frame[config.target] = window["label"]  # label drift: feedback labels vs training labels
            names.append(config.target)
        drift = compare(reference, summarize(frame), columns=names, method=config.method, methods=config.methods,
                        threshold=config.threshold, drift_share=config.drift_share, target=config.target)
        metrics.update(flatten(drift))
        if config.target and config.target in reference.columns and config.prediction in window:
            # prediction drift: predicted values against the training labels' distribution
            pred = window[[config.prediction]].rename(columns={config.prediction: config.target})
            kinds_match = reference[config.target].kind == summarize(pred)[config.target].kind
            if kinds_match:
                p = compare(reference, pred, columns=[config.target]).column(config.target)
                metrics["prediction_drift"] = float(p.drifted) if p.status == "ok" else None
                metrics["prediction_drift_value"] = p.value
        return metrics, drift

    def _store(self, config: MonitorConfig, version: str | None, since: int, until: int, status: str,
               metrics: dict[str, Any], rules: list[RuleResult], drift: DriftReport | None,
               error: str | None = None, data_versions: tuple[str, ...] = (),
               scores: dict[str, Any] | None = None) -> Evaluation:
        report_digest = None
        if drift is not None:
            report_digest = str(self.tracker.blobs.put_bytes(drift.current.to_bytes()).digest)
        stored_metrics = {**metrics, "drift_report": drift.to_dict() if drift is not None else None,
                          "score_drift_report": scores}
        evaluation_id = self.tracker.store.transaction(
            lambda conn: self.repo.add_evaluation(
                conn, monitor=config.name, model=config.model, model_version=version, window_start=since,
                window_end=until, status=status, metrics=stored_metrics, rules=[r.to_dict() for r in rules],
                report_digest=report_digest, error=error),
            once=True, what="recording a monitor evaluation")
        if error:
            log.error("monitor %s: %s", config.name, error)
        alert_ids, triggers = [], []
        for result in rules:
            if result.fired:
                message = f"monitor {config.name}: {result.rule} (value {_fmt(result.value)}) for {config.model}"
                alert_ids.append(self.alert(config, "rule", result.rule, result.value, message, evaluation_id))
        reason = self._retrain_reason(config, bool(alert_ids), data_versions)
        if reason is not None and not self.defer_retrain:
            alert_id = alert_ids[0] if reason == "alert" else None
            triggers.append(self.trainer(config).trigger(config.model, reason, alert_id=alert_id))
        return Evaluation(evaluation_id, config.name, config.model, version, status, metrics, tuple(rules),
                          tuple(alert_ids), tuple(triggers), drift, error, scores, reason)


def _newer_versions(data_versions: tuple[str, ...], tracker: Any) -> float | None:
    """How many versions of the served version's training data sets were added after the ones
    it was trained on (an upstream dependency changed); None when it records no data set."""
    from conveyor.data import get_version

    counted, newer = False, 0
    for ref in data_versions:
        name, _, number = ref.rpartition("@")
        if not name or not number.isdigit():
            continue
        try:
            newer += max(0, get_version(name, tracker=tracker).version - int(number))
        except ConveyorError:  # a data set deleted since: nothing to compare with
            continue
        counted = True
    return float(newer) if counted else None


def _newer_data(data_versions: tuple[str, ...], tracker: Any) -> bool:
    """True when the first training data set of the served version has a newer version."""
    if not data_versions or "@" not in data_versions[0]:
        return False
    from conveyor.data import get_version

    name, _, number = data_versions[0].rpartition("@")
    try:
        return get_version(name, tracker=tracker).version > int(number)
    except (ConveyorError, ValueError):
        return False


def flatten(drift: DriftReport) -> dict[str, Any]:
    """The drift report as rule metrics: ``drift_share``, ``drifted(col)``, ``missing_rate(col)``…"""
    out: dict[str, Any] = {
        "drift_share": drift.drift_share, "n_drifted": float(drift.n_drifted),
        "dataset_drift": float(drift.dataset_drift),
    }
    for c in drift.columns:
        if c.status == "ok":
            out[f"drift({c.column})"] = c.value
            out[f"drifted({c.column})"] = float(c.drifted)
    if drift.label is not None and drift.label.status == "ok":
        out["label_drift"] = float(drift.label.drifted)
    for name, q in drift.quality.columns.items():
        out[f"missing_rate({name})"] = q.missing_rate
        out[f"new_category_rate({name})"] = q.new_category_rate
        out[f"out_of_range_rate({name})"] = q.out_of_range_rate
    return out


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
