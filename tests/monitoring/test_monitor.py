"""Monitors end to end on real stores: reference stored once and linked to its data set
version, evaluations stored, alerts to a real webhook on 127.0.0.1 (up, flaky, down),
retraining policy (promoted, rejected, failed, cool-down, one in flight), reports."""

from __future__ import annotations

import threading

import pytest

import conveyor.data
from conveyor.monitoring import (
    ContinuousTrainer,
    MonitorHooks,
    Monitoring,
    MonitoringDefaults,
    RetrainOutcome,
    report_data,
)
from conveyor.monitoring._report import render_html
from conveyor.store import MonitoringRepo

repo = MonitoringRepo()


@pytest.fixture
def train_ref(server_side, make_frame) -> str:
    return conveyor.data.add(make_frame(seed=1), name="train", tracker=server_side).ref


def _window(make_frame, shift: float, n: int = 800):
    frame = make_frame(n=n, shift=shift, seed=2)
    frame["prediction"] = (frame.age > 45).astype(int)
    frame["label"] = frame.pop("churned")
    frame["latency_ms"] = 5.0
    return frame


def _monitoring(tracker, **defaults) -> Monitoring:
    return Monitoring(tracker, MonitoringDefaults(webhook_backoff=0.01, webhook_timeout=2, **defaults), MonitorHooks())


def test_reference_is_summarised_once_and_linked_to_its_version(tracker, server_side, train_ref, make_frame,
                                                                 monitor_config, embedded_only):
    loads = []

    def load(key):
        loads.append(key)
        return conveyor.data.load(key, tracker=tracker)

    monitoring = Monitoring(tracker, MonitoringDefaults(), MonitorHooks(load_reference=load))
    config = monitor_config(reference=train_ref)
    for _ in range(2):
        monitoring.evaluate(config, current=_window(make_frame, 0.0))
    assert loads == [train_ref]
    with server_side.store.read() as conn:
        assert repo.get_reference(conn, train_ref) is not None


def test_calm_window_is_ok_and_stored(tracker, train_ref, make_frame, monitor_config, server_side):
    evaluation = _monitoring(tracker).evaluate(monitor_config(rules=["drift_share > 0.3", "accuracy < 0.5"]),
                                               current=_window(make_frame, 0.0))
    assert evaluation.status == "ok" and not evaluation.alert_ids
    assert evaluation.metrics["accuracy"] == 1.0 and evaluation.metrics["p95_latency_ms"] == 5.0
    with server_side.store.read() as conn:
        (row,) = repo.evaluations(conn, monitor="churn-watch")
    assert row.status == "ok" and row.metrics["drift_share"] == evaluation.metrics["drift_share"]
    assert [r["status"] for r in row.rules] == ["ok", "ok"]


def test_drift_alerts_reach_the_webhook(tracker, train_ref, make_frame, monitor_config, webhook, server_side):
    monitoring = _monitoring(tracker, webhook=webhook.url)
    webhook.release.clear()  # hold the receiver: evaluation must not wait for it
    evaluation = monitoring.evaluate(monitor_config(rules=["drift_share > 0.3", "missing_rate(age) > 0.5"]),
                                     current=_window(make_frame, 1.0))
    assert evaluation.status == "alert" and len(evaluation.alert_ids) == 1
    assert not webhook.posts  # returned while the delivery is still pending
    webhook.release.set()
    assert monitoring.wait(10)
    (post,) = webhook.posts
    assert post["rule"] == "drift_share > 0.3" and post["model"] == "churn" and post["value"] > 0.3
    with server_side.store.read() as conn:
        (note,) = repo.notifications(conn, evaluation.alert_ids[0])
    assert note["status"] == "delivered" and note["attempts"] == 1 and note["http_status"] == 200
    assert evaluation.metrics["label_drift"] == 1.0 and evaluation.metrics["prediction_drift"] == 1.0


def test_flaky_webhook_is_retried(tracker, train_ref, make_frame, monitor_config, webhook, server_side):
    webhook.statuses = [500, 503]
    monitoring = _monitoring(tracker, webhook=webhook.url)
    evaluation = monitoring.evaluate(monitor_config(), current=_window(make_frame, 1.0))
    assert monitoring.wait(10)
    with server_side.store.read() as conn:
        (note,) = repo.notifications(conn, evaluation.alert_ids[0])
    assert note["status"] == "delivered" and note["attempts"] == 3 and len(webhook.posts) == 3


def test_dead_webhook_is_recorded_and_never_blocks(tracker, train_ref, make_frame, monitor_config, dead_url,
                                                   server_side):
    monitoring = _monitoring(tracker, webhook=dead_url, webhook_retries=2)
    evaluation = monitoring.evaluate(monitor_config(), current=_window(make_frame, 1.0))
    assert evaluation.status == "alert"
    assert monitoring.wait(10)
    with server_side.store.read() as conn:
        (note,) = repo.notifications(conn, evaluation.alert_ids[0])
    assert note["status"] == "failed" and note["attempts"] == 3 and note["error"]


def test_empty_window_and_missing_columns(tracker, train_ref, make_frame, monitor_config):
    monitoring = _monitoring(tracker)
    empty = monitoring.evaluate(monitor_config(), current=_window(make_frame, 0.0).iloc[:0])
    assert empty.status == "empty" and empty.rules[0].status == "no data" and not empty.alert_ids
    broken = monitoring.evaluate(monitor_config(), current=_window(make_frame, 0.0).drop(columns=["age"]))
    assert broken.status == "error" and "['age']" in (broken.error or "")
    no_reader = monitoring.evaluate(monitor_config())
    if getattr(tracker, "http", None) is None:
        assert no_reader.status == "error" and "prediction-log reader" in (no_reader.error or "")
    else:  # the server reads its own prediction log: nothing logged for an unserved model
        assert no_reader.status == "empty" and not no_reader.alert_ids


def _hook(outcome=None, error=None, gate=None):
    calls = []

    def hook(model, trigger_id):
        calls.append((model, trigger_id))
        if gate is not None:
            gate.wait(10)
        if error:
            raise RuntimeError(error)
        return outcome or RetrainOutcome("run123", 2, True, "gate passed; churn@champion → 2")

    hook.calls = calls  # type: ignore[attr-defined]
    return hook


def test_alert_triggers_retraining_and_is_traceable(tracker, train_ref, make_frame, monitor_config, server_side):
    hook = _hook()
    monitoring = Monitoring(tracker, MonitoringDefaults(), MonitorHooks(retrain=hook))
    evaluation = monitoring.evaluate(monitor_config(retrain=True), current=_window(make_frame, 1.0))
    (trigger,) = evaluation.triggers
    assert trigger.status == "promoted" and trigger.alert_id == evaluation.alert_ids[0]
    assert trigger.run_id == "run123" and trigger.candidate_version == 2
    with server_side.store.read() as conn:
        (alert,) = repo.alerts(conn, model="churn")
    assert alert.evaluation_id == evaluation.id  # evaluation → alert → trigger → run → version
    again = monitoring.evaluate(monitor_config(retrain=True), current=_window(make_frame, 1.0))
    assert again.triggers[0].status == "skipped" and "cool-down" in again.triggers[0].decision
    assert len(hook.calls) == 1


def test_rejected_candidate_is_recorded(tracker):
    trainer = ContinuousTrainer(tracker, _hook(RetrainOutcome("r9", 3, False, "gate failed: accuracy 0.7 < 0.8")),
                                cooldown=0)
    row = trainer.trigger("churn", "command")
    assert row.status == "rejected" and "gate failed" in row.decision and row.candidate_version == 3


def test_failed_retraining_keeps_the_champion_and_alerts(tracker, train_ref, make_frame, monitor_config, webhook,
                                                         server_side):
    monitoring = Monitoring(tracker, MonitoringDefaults(webhook=webhook.url),
                            MonitorHooks(retrain=_hook(error="pipeline step 'train' failed")))
    evaluation = monitoring.evaluate(monitor_config(retrain=True), current=_window(make_frame, 1.0))
    (trigger,) = evaluation.triggers
    assert trigger.status == "failed" and "champion stays" in trigger.decision
    assert monitoring.wait(10)
    with server_side.store.read() as conn:
        kinds = [a.kind for a in repo.alerts(conn, model="churn")]
    assert sorted(kinds) == ["retrain_failed", "rule"]
    assert any(p["kind"] == "retrain_failed" and "step 'train' failed" in p["message"] for p in webhook.posts)


def test_at_most_one_retraining_in_flight(tracker):
    gate = threading.Event()
    trainer = ContinuousTrainer(tracker, _hook(gate=gate), cooldown=0)
    first = trainer.trigger("churn", "schedule", background=True)
    second = trainer.trigger("churn", "command", force=True)
    gate.set()
    trainer.wait(10)
    assert first.status == "running"
    assert second.status == "skipped" and "already in flight" in second.decision
    assert trainer.get(first.id).status == "promoted"
    third = trainer.trigger("churn", "command", force=True)  # the lock was released
    assert third.status == "promoted"


def test_report_is_small_and_self_contained(tracker, train_ref, make_frame, monitor_config):
    monitoring = _monitoring(tracker)
    for shift in (0.0, 0.5, 1.0):
        monitoring.evaluate(monitor_config(), current=_window(make_frame, shift, n=5000))
    data = report_data(tracker, "churn")
    assert len(data["series"]) == 3 and set(data["distributions"]) == {"age", "plan", "churned"}
    page = render_html(data)
    assert "<svg" in page and "http://" not in page and "https://" not in page and " src=" not in page
    assert len(page) < 60_000  # summaries, not the 5,000 rows
