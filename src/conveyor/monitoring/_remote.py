"""Monitoring in remote mode: the server evaluates, the client runs its retraining hook.

``Monitoring(tracker)`` returns a :class:`RemoteMonitoring` when ``tracker`` talks to a
``conveyor server`` (``[server] url``). The client holds no store credentials, so:

* **evaluation** is ``POST /api/v1/monitoring/monitors/{name}/evaluate`` with the monitor's
  config and ``[monitoring]`` defaults (read from the client's conveyor.toml) and, when
  given, the ``current`` window as Parquet; the server reads the prediction log and the
  reference from its stores, stores the evaluation and its alerts, and decides whether to
  retrain (``Evaluation.retrain_reason``).
* **webhooks fire on the server**, which recorded the alerts and keeps delivering (and
  recording each delivery) after the call returns; :meth:`RemoteMonitoring.wait` polls the
  alerts' delivery records.
* **retraining runs on the client** (training code never runs on the server): the client's
  hook runs under a lease the server holds in its stores — ``POST /monitoring/retrainings``
  takes it (or records why not), ``…/{id}/heartbeat`` keeps it, ``…/{id}/finish`` records
  the outcome and ``…/unlock`` releases a dead holder's (:class:`RemoteTrainer`).
* a custom ``MonitorHooks.load_window``/``load_reference`` cannot cross the wire: the server
  uses its own prediction log and data sets (pass ``current=`` to evaluate a given frame).
"""

from __future__ import annotations

import base64
import io
import time
from dataclasses import replace
from typing import Any

from conveyor.errors import InvalidInput
from conveyor.monitoring._config import MonitorConfig, parse_duration
from conveyor.monitoring._drift import ColumnDrift, DriftReport
from conveyor.monitoring._monitor import Evaluation, Monitoring
from conveyor.monitoring._quality import ColumnQuality, QualityReport
from conveyor.monitoring._retrain import ContinuousTrainer, RetrainHook
from conveyor.monitoring._rules import RuleResult
from conveyor.monitoring._summary import Summary
from conveyor.store import TriggerRow


# -- wire formats ---------------------------------------------------------------------------------
def frame_to_wire(frame: Any) -> str:
    """A DataFrame as base64 Parquet (types kept exactly; nothing executable)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def frame_from_wire(text: str, *, field: str = "current") -> Any:
    import pandas as pd

    try:
        return pd.read_parquet(io.BytesIO(base64.b64decode(text, validate=True)))
    except Exception as exc:  # noqa: BLE001 - any undecodable upload is the caller's bad input
        raise InvalidInput(f"{field} is not base64 Parquet: {type(exc).__name__}: {exc}", field=field,
                           hint="send the frame as base64 of DataFrame.to_parquet()") from None


def summary_to_wire(summary: Summary | None) -> str | None:
    return None if summary is None else base64.b64encode(summary.to_bytes()).decode("ascii")


def summary_from_wire(text: str, *, field: str = "summary") -> Summary:
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError:
        raise InvalidInput(f"{field} is not base64", field=field, hint="send base64 of Summary.to_bytes()") from None
    try:
        return Summary.from_bytes(data)  # an .npz loaded with allow_pickle=False
    except Exception as exc:  # noqa: BLE001 - CorruptObject or a numpy error: bad input either way
        raise InvalidInput(f"{field} is not a drift summary: {exc}", field=field,
                           hint="send base64 of Summary.to_bytes()") from None


def report_from_wire(data: dict[str, Any], reference: str, current: str) -> DriftReport:
    """A :class:`DriftReport` again from its ``to_dict()`` and its two summaries."""
    def column(c: dict[str, Any]) -> ColumnDrift:
        return ColumnDrift(**{k: v for k, v in c.items() if k in ColumnDrift.__dataclass_fields__})

    quality = data.get("quality") or {"n_rows": 0, "columns": {}}
    return DriftReport(
        columns=tuple(column(c) for c in data["columns"]), drift_share=data["drift_share"],
        n_drifted=int(data["n_drifted"]), n_features=int(data["n_features"]), dataset_drift=bool(data["dataset_drift"]),
        drift_share_threshold=float(data["drift_share_threshold"]),
        quality=QualityReport(int(quality["n_rows"]), {
            k: ColumnQuality(**{**v, "new_categories": tuple(v.get("new_categories") or ())})
            for k, v in quality["columns"].items()}),
        reference=summary_from_wire(reference, field="reference"), current=summary_from_wire(current, field="current"))


def trigger_from_wire(data: dict[str, Any]) -> TriggerRow:
    return TriggerRow(**{k: data.get(k) for k in TriggerRow.__dataclass_fields__})


def evaluation_from_wire(data: dict[str, Any]) -> Evaluation:
    drift = None
    if data.get("drift") is not None and data.get("reference_summary") and data.get("current_summary"):
        drift = report_from_wire(data["drift"], data["reference_summary"], data["current_summary"])
    return Evaluation(
        id=int(data["id"]), monitor=data["monitor"], model=data["model"], model_version=data["model_version"],
        status=data["status"], metrics=dict(data["metrics"]),
        rules=tuple(RuleResult(r["rule"], bool(r["fired"]), r["value"], r["status"]) for r in data["rules"]),
        alert_ids=tuple(int(a) for a in data["alert_ids"]), triggers=(), drift=drift, error=data.get("error"),
        score_drift=data.get("score_drift"), retrain_reason=data.get("retrain_reason"))


def _config_json(config: MonitorConfig | None) -> dict[str, Any] | None:
    return None if config is None else config.model_dump(mode="json")


# -- the retraining lease through the server --------------------------------------------------------
class RemoteTrainer(ContinuousTrainer):
    """:class:`ContinuousTrainer` whose lease lives in the server's stores: the policy
    (cool-down, backoff, one in flight) is applied by the server; the hook runs here.
    With ``monitor`` a failure's ``retrain_failed`` alert is recorded (and its webhook
    fired) by the server; without, ``on_failure`` is called here for the hook's failures."""

    def __init__(self, tracker: Any, hook: RetrainHook | None, *, cooldown: float = 6 * 3600,
                 on_failure: Any = None, lease: float = 300.0, backoff: float = 300.0, holder: str | None = None,
                 monitor: MonitorConfig | None = None, defaults: Any = None) -> None:
        super().__init__(tracker, hook, cooldown=cooldown, on_failure=None if monitor is not None else on_failure,
                         lease=lease, backoff=backoff, holder=holder)
        self.http = tracker.http
        self._context = {"monitor": _config_json(monitor),
                         "defaults": defaults.model_dump(mode="json") if defaults is not None else None}
        self.alert_ids: list[int] = []  # retrain_failed alerts the server recorded for this trainer
        self.hooked = bool((monitor is not None and monitor.webhook) or (defaults is not None and defaults.webhook))

    def _policy(self) -> dict[str, Any]:
        return {"holder": self.holder, "lease": self.lease, "cooldown": self.cooldown, "backoff": self.backoff,
                **self._context}

    def _start(self, model: str, reason: str, alert_id: int | None, force: bool) -> TriggerRow:
        found = self.http.json("POST", "/monitoring/retrainings", json={
            "model": model, "reason": reason, "alert_id": alert_id, "force": force, **self._policy()})
        self.alert_ids += found.get("alert_ids", [])
        return trigger_from_wire(found["trigger"])

    def _skip(self, model: str, reason: str, alert_id: int | None, decision: str) -> TriggerRow:
        found = self.http.json("POST", "/monitoring/retrainings", json={
            "model": model, "reason": reason, "alert_id": alert_id, "skip": decision, **self._policy()})
        return trigger_from_wire(found["trigger"])

    def _finish(self, trigger_id: int, status: str, decision: str, run_id: str | None,
                candidate_version: int | None = None) -> None:
        found = self.http.json("POST", f"/monitoring/retrainings/{trigger_id}/finish", json={
            "status": status, "decision": decision, "run_id": run_id, "candidate_version": candidate_version,
            **self._context})
        self.alert_ids += found.get("alert_ids", [])

    def _beat(self, trigger_id: int) -> bool:
        found = self.http.json("POST", f"/monitoring/retrainings/{trigger_id}/heartbeat", json={"lease": self.lease},
                               retry=False)
        return bool(found["held"])

    def retry_due(self, model: str, retries: int) -> bool:
        found = self.http.json("GET", "/monitoring/retrainings/due", params={
            "model": model, "retries": retries, "cooldown": self.cooldown, "backoff": self.backoff})
        return bool(found["due"])

    def unlock(self, model: str, *, by: str | None = None) -> TriggerRow:
        found = self.http.json("POST", "/monitoring/retrainings/unlock",
                               json={"model": model, "by": by or self.holder, **self._context})
        self.alert_ids += found.get("alert_ids", [])
        return trigger_from_wire(found["trigger"])

    def get(self, trigger_id: int) -> TriggerRow:
        return trigger_from_wire(self.http.json("GET", f"/monitoring/retrainings/{trigger_id}"))


# -- evaluation through the server ----------------------------------------------------------------------
class RemoteMonitoring(Monitoring):
    """:class:`Monitoring` over a ``conveyor server`` (see the module's docstring)."""

    def __init__(self, tracker: Any, defaults: Any = None, hooks: Any = None) -> None:
        from conveyor.monitoring._config import MonitoringDefaults
        from conveyor.monitoring._monitor import MonitorHooks

        self.tracker = tracker
        self.http = tracker.http
        self.defaults = defaults or MonitoringDefaults()
        self.hooks = hooks or MonitorHooks()
        self._watched: dict[int, bool] = {}  # alert id → a webhook was set (so a delivery will be recorded)
        self._trainers: list[RemoteTrainer] = []

    def trainer(self, config: MonitorConfig) -> RemoteTrainer:
        d = self.defaults
        trainer = RemoteTrainer(self.tracker, self.hooks.retrain,
                                cooldown=parse_duration(config.cooldown or d.cooldown, field="cooldown"),
                                lease=parse_duration(d.retrain_lease, field="monitoring.retrain_lease"),
                                backoff=parse_duration(d.retrain_backoff, field="monitoring.retrain_backoff"),
                                monitor=config, defaults=d)
        self._trainers.append(trainer)
        return trainer

    def evaluate(self, config: MonitorConfig, *, current: Any = None, until_ms: int | None = None,
                 since_ms: int | None = None) -> Evaluation:
        body: dict[str, Any] = {"config": _config_json(config), "defaults": self.defaults.model_dump(mode="json"),
                                "until": until_ms, "since": since_ms}
        if current is not None:
            body["current"] = frame_to_wire(current)
        found = self.http.json("POST", f"/monitoring/monitors/{_quote(config.name)}/evaluate", json=body)
        evaluation = evaluation_from_wire(found)
        hooked = bool(config.webhook or self.defaults.webhook)
        for alert_id in evaluation.alert_ids:
            self._watched[alert_id] = hooked
        if evaluation.retrain_reason is not None:
            alert_id = evaluation.alert_ids[0] if evaluation.retrain_reason == "alert" else None
            row = self.trainer(config).trigger(config.model, evaluation.retrain_reason, alert_id=alert_id)
            evaluation = replace(evaluation, triggers=(row,))
        return evaluation

    def alert(self, config: MonitorConfig, kind: str, rule: str, value: float | None, message: str,
              evaluation_id: int | None = None) -> int:
        raise InvalidInput("in remote mode alerts are recorded by the server's evaluation", field="alert",
                           hint="evaluate through Monitoring(tracker).evaluate(config)")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the server recorded a delivery for every alert whose monitor has a webhook."""
        for trainer in self._trainers:
            for alert_id in trainer.alert_ids:
                self._watched.setdefault(alert_id, trainer.hooked)
        deadline = None if timeout is None else time.monotonic() + timeout
        pending = [a for a, hooked in self._watched.items() if hooked]
        while pending:
            pending = [a for a in pending if not self.http.json("GET", f"/monitoring/alerts/{a}")["notifications"]]
            if not pending:
                break
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        self._watched = {a: h for a, h in self._watched.items() if a in pending}
        return True


# -- reports and ad hoc drift through the server ------------------------------------------------------
def remote_report(tracker: Any, model: str, *, monitor: str | None = None, limit: int = 200,
                  prediction: str = "prediction", score: str | None = None, evaluation: int | None = None,
                  html: bool = False) -> dict[str, Any]:
    """``{"data": <report document>, "html": <page or None>}`` from ``GET /monitoring/reports/{model}``
    (the server reads its own prediction log for the newest window's prediction drift)."""
    params: dict[str, Any] = {"prediction": prediction, "limit": limit, "html": html}
    for key, value in (("monitor", monitor), ("score", score), ("evaluation", evaluation)):
        if value is not None:
            params[key] = value
    return dict(tracker.http.json("GET", f"/monitoring/reports/{_quote(model)}", params=params))


def remote_drift(tracker: Any, reference: dict[str, Any], current: dict[str, Any],
                 **options: Any) -> tuple[DriftReport, str | None]:
    """The report of ``POST /monitoring/drift`` (each side ``{"data": ref}``, ``{"model": …}`` or
    ``{"summary": summary_to_wire(s)}``) and its HTML page when ``html=True`` was asked."""
    body = {"reference": reference, "current": current, **{k: v for k, v in options.items() if v is not None}}
    found = tracker.http.json("POST", "/monitoring/drift", json=body)
    return report_from_wire(found["report"], found["reference"], found["current"]), found.get("html")


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


__all__ = ["RemoteMonitoring", "RemoteTrainer", "evaluation_from_wire", "frame_from_wire", "frame_to_wire",
           "remote_drift", "remote_report", "report_from_wire", "summary_from_wire", "summary_to_wire",
           "trigger_from_wire"]
