"""Live performance from the prediction log joined with feedback, per window and version;
retraining on a schedule and on new data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conveyor.monitoring import (
    MonitorHooks,
    Monitoring,
    MonitoringDefaults,
    RetrainOutcome,
    live_performance,
    score_frame,
)

HOUR = 3_600_000


def _log(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    label = rng.integers(0, 2, n)
    wrong = rng.random(n) < np.where(np.arange(n) < n // 2, 0.1, 0.4)  # the second hour is worse
    return pd.DataFrame({
        "request_id": [f"r{i}" for i in range(n)],
        "timestamp": np.where(np.arange(n) < n // 2, 0, HOUR) + np.arange(n),
        "version": np.where(np.arange(n) % 2 == 0, "1", "2"),
        "latency_ms": rng.uniform(1, 10, n),
        "prediction": np.where(wrong, 1 - label, label),
        "score": np.clip(label * 0.6 + rng.uniform(0, 0.4, n), 0, 1),
        "label": np.where(np.isin(np.arange(n) % 20, [0, 1]), np.nan, label),  # 10 % without feedback yet
    })


def test_classification_per_window_and_version():
    rows = live_performance(_log(), every=3600, score="score")
    assert [(r.window_start, r.version) for r in rows] == [(0, "1"), (0, "2"), (HOUR, "1"), (HOUR, "2")]
    assert all(r.rows == 100 and r.labelled_rows == 90 for r in rows)
    first, later = rows[0].metrics["accuracy"], rows[2].metrics["accuracy"]
    assert first > 0.8 > later > 0.5
    assert {"f1", "precision", "recall", "roc_auc", "p95_latency_ms"} <= set(rows[0].metrics)


def test_accuracy_matches_a_direct_computation():
    log = _log()
    labelled = log[log.label.notna()]
    metrics = score_frame(log)
    assert metrics["accuracy"] == pytest.approx((labelled.prediction == labelled.label).mean())
    assert metrics["labelled_rows"] == len(labelled)


def test_regression_and_no_feedback():
    log = pd.DataFrame({"prediction": [1.0, 2.5, 3.0], "label": [1.5, 2.0, np.nan], "timestamp": [0, 1, 2]})
    metrics = score_frame(log, task="regression")
    assert metrics["mae"] == pytest.approx(0.5) and metrics["rmse"] == pytest.approx(0.5)
    unlabelled = score_frame(log.assign(label=np.nan))
    assert unlabelled["labelled_rows"] == 0 and "accuracy" not in unlabelled
    assert live_performance(log.iloc[:0]) == []


def _counting_hook():
    calls = []

    def hook(model, trigger_id):
        calls.append(trigger_id)
        return RetrainOutcome(None, None, False, "gate failed: nothing better")

    hook.calls = calls  # type: ignore[attr-defined]
    return hook


def test_schedule_and_new_data_triggers(tracker, server_side, make_frame, monitor_config):
    import conveyor.data

    ref = conveyor.data.add(make_frame(seed=1), name="train", tracker=server_side).ref
    hook = _counting_hook()
    monitoring = Monitoring(tracker, MonitoringDefaults(), MonitorHooks(retrain=hook))
    window = make_frame(seed=2).rename(columns={"churned": "label"})
    scheduled = monitoring.evaluate(monitor_config(reference=ref, rules=[], retrain_every="1h", cooldown="0s"),
                                    current=window)
    assert scheduled.triggers[0].reason == "schedule" and scheduled.triggers[0].status == "rejected"
    again = monitoring.evaluate(monitor_config(reference=ref, rules=[], retrain_every="1h"), current=window)
    assert not again.triggers  # the schedule is not due yet
    assert len(hook.calls) == 1


def test_new_data_is_detected(tracker, make_frame, embedded_only):
    import conveyor.data
    from conveyor.monitoring._monitor import _newer_data

    first = conveyor.data.add(make_frame(seed=1), name="train", tracker=tracker).ref
    assert not _newer_data((first,), tracker)
    conveyor.data.add(make_frame(seed=5), name="train", tracker=tracker)
    assert _newer_data((first,), tracker)
    assert not _newer_data((), tracker) and not _newer_data(("data:/unknown@1",), tracker)


def test_a_regressor_on_zero_one_labels_is_scored_as_a_regressor():
    """0/1 labels look like classes, but fractional predictions are a regressor's: MAE, not a crash."""
    frame = pd.DataFrame({"prediction": [0.2, 0.9, 0.4, 1.3], "label": [0, 1, 0, 1]})
    out = score_frame(frame)
    assert out["mae"] == pytest.approx((0.2 + 0.1 + 0.4 + 0.3) / 4) and "accuracy" not in out
    classes = score_frame(pd.DataFrame({"prediction": [0.0, 1.0, 1.0, 0.0], "label": [0, 1, 0, 0]}))
    assert classes["accuracy"] == 0.75 and "mae" not in classes  # whole-number answers stay classes
