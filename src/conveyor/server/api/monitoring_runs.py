"""``/api/v1/monitoring`` writes for remote clients: evaluate a monitor, and the retraining lease.

A remote client (``[server] url``) has no store credentials, so ``conveyor monitor run`` and
``conveyor.monitoring.Monitoring(tracker).evaluate`` send the monitor's config (and the
``[monitoring]`` defaults) of the client's conveyor.toml here; the server evaluates against
its stores — its prediction log, data sets and registry — stores the evaluation and its
alerts, and **fires the webhooks** (it recorded the alerts; deliveries go on, and are
recorded, after the answer). The server never runs training code: the answer's
``retrain_reason`` tells the client to retrain, and the client runs its hook under a lease
kept here (``POST /retrainings`` takes it or records why not, ``/{id}/heartbeat`` keeps it,
``/{id}/finish`` records the outcome — a failure's ``retrain_failed`` alert is recorded and
sent here —, ``/unlock`` releases a dead holder's). Policy (cool-down, backoff, one in
flight) is the same code as embedded mode (``conveyor.monitoring._retrain``).

Permission: ``edit`` on kind ``model``, the monitored model; ``read`` on the data set the
monitor's reference (or the served version's training data) names.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from conveyor.errors import InvalidInput, NotFound
from conveyor.server.api import _deps

router = APIRouter(prefix="/monitoring", tags=["monitoring"])
MAX_FRAME = 256 * 1024 * 1024  # base64 characters of an uploaded window


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvaluateIn(_In):
    config: dict[str, Any] = Field(description="The [monitors.<name>] table (name taken from the path).")
    defaults: dict[str, Any] = Field(default_factory=dict, description="The [monitoring] table.")
    current: str | None = Field(None, max_length=MAX_FRAME, description="A window to evaluate instead of the "
                                "prediction log's: base64 of the Parquet bytes of a DataFrame.")
    until: int | None = Field(None, ge=0, le=2**62, description="End of the window (ms; default now).")
    since: int | None = Field(None, ge=0, le=2**62, description="Start of the window (ms; default: `window` "
                              "before its end): evaluate a shorter span, e.g. one batch.")


class _Policy(_In):
    monitor: dict[str, Any] | None = Field(None, description="The monitor's config: its webhook gets the "
                                           "retrain_failed alerts.")
    defaults: dict[str, Any] | None = None


class StartIn(_Policy):
    model: str = Field(..., min_length=1, max_length=256)
    reason: Literal["alert", "schedule", "new_data", "command", "retry"]
    alert_id: int | None = Field(None, ge=1, le=2**62)
    force: bool = Field(False, description="Skip the cool-down and the backoff (never a live lease).")
    skip: str | None = Field(None, min_length=1, max_length=2000, description="Only record a skip with this decision.")
    holder: str = Field(..., min_length=1, max_length=256, description="host:pid of the process that runs the hook.")
    lease: float = Field(300.0, gt=0, le=7 * 86400)
    cooldown: float = Field(6 * 3600.0, ge=0, le=10 * 365 * 86400)
    backoff: float = Field(300.0, ge=0, le=365 * 86400)


class FinishIn(_Policy):
    status: Literal["promoted", "rejected", "failed"]
    decision: str = Field(..., max_length=20_000)
    run_id: str | None = Field(None, max_length=64)
    candidate_version: int | None = Field(None, ge=1, le=2**62)


class BeatIn(_In):
    lease: float = Field(300.0, gt=0, le=7 * 86400)


class UnlockIn(_Policy):
    model: str = Field(..., min_length=1, max_length=256)
    by: str | None = Field(None, max_length=256)


# -- helpers ------------------------------------------------------------------------------------
def json_response(data: Any) -> Response:
    """JSON with NaN/±inf as null and numpy values as numbers (metrics may hold either)."""
    return Response(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=str),
                    media_type="application/json")


def _config(data: dict[str, Any], name: str | None = None) -> Any:
    from conveyor.monitoring._config import MonitorConfig, _validate

    name = name or str(data.get("name") or "")
    if data.get("name") not in (None, name):
        raise InvalidInput(f"config.name {data['name']!r} differs from the monitor {name!r} in the path",
                           field="config.name", value=data["name"], hint="leave name out or make them equal")
    config = _validate(MonitorConfig, {**data, "name": name}, f"monitors.{name}")
    config.parsed_rules()
    return config


def _defaults(data: dict[str, Any] | None) -> Any:
    from conveyor.monitoring._config import MonitoringDefaults, _validate

    return _validate(MonitoringDefaults, dict(data or {}), "monitoring")


def dataset_name(ref: str, field: str) -> str:
    """``data:/name@3`` → ``name`` (what permissions on kind ``data`` are keyed by)."""
    if not ref.startswith("data:/") or not ref[6:].split("@")[0].strip("/"):
        raise InvalidInput(f"{field} {ref!r} is not a data set reference", field=field, value=ref,
                           hint='write "data:/<name>@<version>"')
    return ref[6:].split("@")[0].strip("/")


def _reader(tracker: Any) -> Any:
    def load(model: str, version: str | None, since: int, until: int) -> Any:
        from conveyor.serving import read_prediction_log

        return read_prediction_log(model, version, since, until, with_feedback=True, tracker=tracker)

    return load


def _authorize_reference(request: Request, config: Any, tracker: Any) -> None:
    """``read`` on the data set the evaluation will summarise (explicit, or the served version's)."""
    if config.reference is not None:
        _deps.authorize(request, "data", dataset_name(config.reference, "config.reference"), "read")
        return
    from conveyor.errors import ConveyorError
    from conveyor.registry import Registry

    try:
        mv = Registry(tracker).get(f"models:/{config.model}@{config.alias}")
    except (NotFound, ConveyorError):
        return  # nothing served: the evaluation stores an error naming it
    if mv.data_versions and str(mv.data_versions[0]).startswith("data:/"):
        _deps.authorize(request, "data", dataset_name(str(mv.data_versions[0]), "reference"), "read")


def _webhook_allowed(request: Request, url: str | None, field: str) -> None:
    """With authentication on, the server POSTs alerts only to hosts ``[server] webhook_hosts``
    lists: a user who may edit a model must not make the server call whatever it can reach."""
    from urllib.parse import urlsplit

    from conveyor.server.api._deps import AllowAll

    if url is None or isinstance(request.app.state.policy, AllowAll):
        return
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    allowed = {h.lower() for h in request.app.state.server.webhook_hosts}
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if host in allowed or f"{host}:{port}" in allowed:
        return
    raise InvalidInput(f"the server may not send alerts to {host or url!r}: the host is not in its [server] "
                       "webhook_hosts", field=field, value=url,
                       hint="ask the server's admin to add the host to [server] webhook_hosts "
                            "(CONVEYOR_SERVER_WEBHOOK_HOSTS), or leave the webhook out")


def _trainer(request: Request, body: _Policy, model: str, *, holder: str | None = None, cooldown: float = 0.0,
             lease: float = 300.0, backoff: float = 300.0) -> tuple[Any, list[int]]:
    """The server's :class:`ContinuousTrainer` for ``model`` (no hook: the client runs it);
    failures and abandoned retrainings become ``retrain_failed`` alerts of the monitor."""
    from conveyor.monitoring import ContinuousTrainer, Monitoring

    tracker = _deps.tracker(request)
    alerts: list[int] = []
    on_failure = None
    if body.monitor is not None:
        config = _config(body.monitor)
        if config.model != model:
            raise InvalidInput(f"monitor.model {config.model!r} is not the model {model!r}", field="monitor.model",
                               value=config.model, hint="send the monitor that watches this model")
        monitoring = Monitoring(tracker, _defaults(body.defaults))
        monitoring.notifier(config.webhook or monitoring.defaults.webhook)  # a bad URL is refused before any write
        _webhook_allowed(request, config.webhook or monitoring.defaults.webhook, "monitor.webhook")

        def on_failure(failed_model: str, decision: str, trigger_id: int) -> None:
            alerts.append(monitoring.alert(config, "retrain_failed", f"retraining trigger {trigger_id}", None,
                                           f"retraining of {failed_model} failed (trigger {trigger_id}): {decision}"))

    trainer = ContinuousTrainer(tracker, None, cooldown=cooldown, on_failure=on_failure, lease=lease, backoff=backoff,
                                holder=holder)
    return trainer, alerts


def _row(row: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(row)


def _trigger(request: Request, trigger_id: int, level: Literal["read", "edit"]) -> Any:
    from conveyor.store import MonitoringRepo

    tracker = _deps.tracker(request)
    row = tracker.store.query(lambda conn: MonitoringRepo().get_trigger(conn, trigger_id),  # NotFound → 404
                              what=f"reading retraining trigger {trigger_id}")
    _deps.authorize(request, "model", row.model, level)
    return row


# -- evaluation ---------------------------------------------------------------------------------
@router.post("/monitors/{name}/evaluate", summary="Evaluate a monitor once against the server's stores")
def evaluate(request: Request, body: EvaluateIn, name: str = Path(..., min_length=1, max_length=256)) -> Any:
    from conveyor.monitoring import MonitorHooks, Monitoring
    from conveyor.monitoring._remote import frame_from_wire, summary_to_wire

    config = _config(body.config, name)
    defaults = _defaults(body.defaults)
    tracker = _deps.tracker(request)
    _deps.authorize(request, "model", config.model, "edit")
    _authorize_reference(request, config, tracker)
    current = frame_from_wire(body.current) if body.current is not None else None
    monitoring = Monitoring(tracker, defaults, MonitorHooks(load_window=_reader(tracker)))
    monitoring.notifier(config.webhook or defaults.webhook)  # a bad URL is refused before anything is stored
    hook_field = "config.webhook" if config.webhook else "defaults.webhook"
    _webhook_allowed(request, config.webhook or defaults.webhook, hook_field)
    monitoring.defer_retrain = True  # the client runs its retraining hook
    e = monitoring.evaluate(config, current=current, until_ms=body.until, since_ms=body.since)
    return json_response({
        "id": e.id, "monitor": e.monitor, "model": e.model, "model_version": e.model_version, "status": e.status,
        "metrics": e.metrics, "rules": [r.to_dict() for r in e.rules], "alert_ids": list(e.alert_ids),
        "error": e.error, "score_drift": e.score_drift, "retrain_reason": e.retrain_reason,
        "drift": e.drift.to_dict() if e.drift is not None else None,
        "reference_summary": summary_to_wire(e.drift.reference) if e.drift is not None else None,
        "current_summary": summary_to_wire(e.drift.current) if e.drift is not None else None,
    })


# -- the retraining lease -----------------------------------------------------------------------
@router.post("/retrainings", summary="Take a model's retraining lease (or record why not)")
def start_retraining(request: Request, body: StartIn) -> Any:
    _deps.authorize(request, "model", body.model, "edit")
    trainer, alerts = _trainer(request, body, body.model, holder=body.holder, cooldown=body.cooldown,
                               lease=body.lease, backoff=body.backoff)
    if body.skip is not None:
        row = trainer._skip(body.model, body.reason, body.alert_id, body.skip)
    else:
        row = trainer._start(body.model, body.reason, body.alert_id, body.force)
    return json_response({"trigger": _row(row), "alert_ids": alerts})


@router.get("/retrainings/due", summary="Whether a model's failed retraining is due for a retry")
def retry_due(
    request: Request, model: str = Query(..., min_length=1, max_length=256),
    retries: int = Query(3, ge=0, le=100), cooldown: float = Query(6 * 3600.0, ge=0, le=10 * 365 * 86400),
    backoff: float = Query(300.0, ge=0, le=365 * 86400),
) -> Any:
    from conveyor.monitoring import ContinuousTrainer

    _deps.authorize(request, "model", model, "read")
    trainer = ContinuousTrainer(_deps.tracker(request), None, cooldown=cooldown, backoff=backoff)
    return json_response({"due": trainer.retry_due(model, retries)})


@router.get("/retrainings/{trigger_id}", summary="One retraining trigger")
def get_retraining(request: Request, trigger_id: int = Path(..., ge=1, le=2**62)) -> Any:
    return json_response(_row(_trigger(request, trigger_id, "read")))


@router.post("/retrainings/{trigger_id}/heartbeat", summary="Keep a running retraining's lease")
def heartbeat(request: Request, body: BeatIn, trigger_id: int = Path(..., ge=1, le=2**62)) -> Any:
    from conveyor.store import MonitoringRepo

    _trigger(request, trigger_id, "edit")
    with _deps.tracker(request).store.write() as conn:
        held = MonitoringRepo().heartbeat(conn, trigger_id, int(body.lease * 1000))
    return json_response({"held": bool(held)})


@router.post("/retrainings/{trigger_id}/finish", summary="Record a retraining's outcome (releases the lease)")
def finish_retraining(request: Request, body: FinishIn, trigger_id: int = Path(..., ge=1, le=2**62)) -> Any:
    row = _trigger(request, trigger_id, "edit")
    trainer, alerts = _trainer(request, body, row.model)
    trainer._finish(trigger_id, body.status, body.decision, body.run_id, body.candidate_version)
    if body.status == "failed" and row.status == "running" and trainer.on_failure is not None:
        trainer.on_failure(row.model, body.decision, trigger_id)  # once: a repeated finish is a no-op
    return json_response({"trigger": _row(trainer.get(trigger_id)), "alert_ids": alerts})


@router.post("/retrainings/unlock", summary="Release a model's retraining lease (the trigger becomes abandoned)")
def unlock(request: Request, body: UnlockIn) -> Any:
    _deps.authorize(request, "model", body.model, "edit")
    trainer, alerts = _trainer(request, body, body.model)
    row = trainer.unlock(body.model, by=_deps.user_name(request) or body.by)  # the authenticated name wins
    return json_response({"trigger": _row(row), "alert_ids": alerts})
