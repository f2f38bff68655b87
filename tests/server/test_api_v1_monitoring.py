"""``/api/v1/monitoring``: predictions served by the real serving app (a random forest) with
feedback labels, a monitor evaluated over them whose drift alert triggered a retraining."""

from __future__ import annotations

from typing import Any

import pytest

from fixtures.api_world import World, churn_frame, api, error  # noqa: F401  (api: fixture)
from fixtures.asgi import SyncClient


def test_prediction_log_pages_hold_the_served_rows(api: SyncClient) -> None:
    live = churn_frame(60, 1.0, 4)
    rows: list[dict[str, Any]] = []
    token = None
    pages = 0
    while True:
        params: dict[str, Any] = {"model": "churn-rf", "max_results": 25}
        if token:
            params["page_token"] = token
        page = api.get("/api/v1/monitoring/predictions", params=params).json()
        assert page["total"] == 60
        rows += page["rows"]
        pages += 1
        token = page["next_page_token"]
        if token is None:
            break
    assert pages == 3 and len(rows) == 60
    assert page["columns"][:6] == ["request_id", "row", "timestamp", "model", "version", "latency_ms"]
    assert {"age", "income", "tenure"} <= set(page["columns"])
    assert [r["age"] for r in rows] == pytest.approx(live["age"].tolist())
    assert {r["version"] for r in rows} == {"2"} and all(isinstance(r["timestamp"], int) for r in rows)
    assert [r["request_id"] for r in rows[:11]] == ["req-0"] * 10 + ["req-1"]


def test_feedback_and_the_joined_labels(api: SyncClient) -> None:
    live = churn_frame(60, 1.0, 4)
    joined = api.get("/api/v1/monitoring/predictions",
                     params={"model": "churn-rf", "with_feedback": True, "max_results": 100}).json()["rows"]
    labels = [r["label"] for r in joined]
    assert labels[:30] == live["churned"][:30].tolist() and labels[30:] == [None] * 30
    fb = api.get("/api/v1/monitoring/feedback", params={"model": "churn-rf"}).json()
    assert fb["total"] == 30 and "label" in fb["columns"]
    assert {r["request_id"] for r in fb["rows"]} == {"req-0", "req-1", "req-2"}
    assert api.get("/api/v1/monitoring/feedback", params={"model": "churn-rf", "version": "1"}).json()["total"] == 0


def test_windows_and_versions(api: SyncClient) -> None:
    everything = api.get("/api/v1/monitoring/predictions", params={"model": "churn-rf", "max_results": 1}).json()
    first = everything["rows"][0]["timestamp"]
    later = api.get("/api/v1/monitoring/predictions", params={"model": "churn-rf", "since": str(first + 3_600_000)})
    assert later.json()["total"] == 0
    iso = api.get("/api/v1/monitoring/predictions", params={"model": "churn-rf", "since": "2020-01-01T00:00:00Z"})
    assert iso.json()["total"] == 60
    assert api.get("/api/v1/monitoring/predictions", params={"model": "churn-rf", "version": "1"}).json()["total"] == 0
    assert api.get("/api/v1/monitoring/predictions", params={"model": "nobody"}).json()["total"] == 0
    error(api.get("/api/v1/monitoring/predictions", params={"model": "churn-rf", "since": "last week"}),
          400, "INVALID", "since")
    error(api.get("/api/v1/monitoring/predictions"), 400, "INVALID", "model")
    error(api.get("/api/v1/monitoring/predictions", params={"model": "churn-rf", "max_results": -1}),
          400, "INVALID", "max_results")


def test_evaluations_with_per_feature_drift(api: SyncClient, api_world: World) -> None:
    found = api.get("/api/v1/monitoring/evaluations", params={"model": "churn-rf"}).json()["evaluations"]
    assert [e["id"] for e in found] == [api_world.monitor_evaluation_id]
    e = found[0]
    assert (e["monitor"], e["status"], e["model_version"]) == ("churn-watch", "alert", "2")
    assert e["metrics"]["drift_share"] > 0.3 and e["alert_ids"] == list(api_world.alert_ids)
    assert e["rules"] == [{"rule": "drift_share > 0.3", "fired": True, "value": e["metrics"]["drift_share"],
                           "status": "fired"}]
    drift = {c["column"]: c for c in e["drift"]}
    assert {"age", "income", "tenure"} <= set(drift)
    assert drift["age"]["drifted"] is True and drift["age"]["n_current"] == 60 and drift["age"]["n_reference"] == 800
    assert e["window_end"] - e["window_start"] == 3_600_000
    detail = api.get(f"/api/v1/monitoring/evaluations/{e['id']}").json()
    assert detail["drift_report"]["n_current"] == 60 and "age" in detail["drift_report"]["quality"]["columns"]
    assert api.get("/api/v1/monitoring/evaluations", params={"status": "ok"}).json()["evaluations"] == []
    assert api.get("/api/v1/monitoring/evaluations", params={"monitor": "other"}).json()["evaluations"] == []


def test_drift_over_time(api: SyncClient, api_world: World) -> None:
    series = api.get("/api/v1/monitoring/drift", params={"monitor": "churn-watch", "column": "age"}).json()
    assert [(p["evaluation_id"], p["column"], p["drifted"]) for p in series["points"]] == \
        [(api_world.monitor_evaluation_id, "age", True)]
    assert series["points"][0]["value"] is not None
    every = api.get("/api/v1/monitoring/drift", params={"monitor": "churn-watch"}).json()["points"]
    assert {p["column"] for p in every} >= {"age", "income", "tenure"}
    error(api.get("/api/v1/monitoring/drift", params={"monitor": "nobody"}), 404, "NOT_FOUND")


def test_alerts_name_the_retraining_they_triggered(api: SyncClient, api_world: World) -> None:
    alerts = api.get("/api/v1/monitoring/alerts", params={"model": "churn-rf"}).json()["alerts"]
    assert [a["id"] for a in alerts] == list(api_world.alert_ids)
    alert = alerts[0]
    assert alert["rule"] == "drift_share > 0.3" and alert["evaluation_id"] == api_world.monitor_evaluation_id
    [retraining] = alert["retrainings"]
    assert (retraining["reason"], retraining["run_id"], retraining["candidate_version"]) == \
        ("alert", api_world.retrain_run_id, 3)
    assert retraining["status"] == "rejected" and "not promoted" in retraining["decision"]
    assert api.get(f"/api/v1/monitoring/alerts/{alert['id']}").json() == alert
    listed = api.get("/api/v1/monitoring/retrainings").json()["retrainings"]
    assert [r["id"] for r in listed] == [retraining["id"]]
    version = api.get("/api/v1/models/churn-rf/versions/3").json()
    assert version["run_id"] == api_world.retrain_run_id and version["data_versions"] == ["data:/churn@2"]


@pytest.mark.parametrize("path, status, field", [
    ("/api/v1/monitoring/evaluations/999999", 404, None),
    ("/api/v1/monitoring/alerts/999999", 404, None),
    ("/api/v1/monitoring/evaluations/abc", 400, "evaluation_id"),
    ("/api/v1/monitoring/alerts/0", 400, "alert_id"),
    ("/api/v1/monitoring/evaluations?status=bad", 400, "status"),
    ("/api/v1/monitoring/alerts?until=noon", 400, "until"),
])
def test_bad_ids_and_values(api: SyncClient, path: str, status: int, field: str | None) -> None:
    error(api.get(path), status, "NOT_FOUND" if status == 404 else "INVALID", field)


def test_a_remote_evaluation_reads_the_servers_own_prediction_log(api: SyncClient) -> None:
    """What a remote ``conveyor monitor run`` asks: the server evaluates over the random
    forest's logged traffic and decides the retraining, which it leaves to the client."""
    before = len(api.get("/api/v1/monitoring/retrainings", params={"model": "churn-rf"}).json()["retrainings"])
    config = {"model": "churn-rf", "reference": "data:/churn@1", "target": "churned", "window": "30d",
              "rules": ["drift_share > 0.3"], "retrain": True}
    answer = api.post("/api/v1/monitoring/monitors/churn-remote/evaluate", json={"config": config})
    assert answer.status_code == 200, answer.text
    evaluation = answer.json()
    assert evaluation["status"] == "alert" and evaluation["model_version"] == "2", evaluation["error"]
    assert evaluation["metrics"]["rows"] == 60 and evaluation["metrics"]["drift_share"] > 0.3
    assert evaluation["retrain_reason"] == "alert" and len(evaluation["alert_ids"]) == 1
    assert {c["column"] for c in evaluation["drift"]["columns"]} >= {"age", "income", "tenure"}
    after = api.get("/api/v1/monitoring/retrainings", params={"model": "churn-rf"}).json()["retrainings"]
    assert len(after) == before  # the server never runs training code: the client retrains
    stored = api.get(f"/api/v1/monitoring/evaluations/{evaluation['id']}").json()
    assert stored["monitor"] == "churn-remote" and stored["alert_ids"] == evaluation["alert_ids"]

    window = api.post("/api/v1/monitoring/drift", json={
        "reference": {"data": "data:/churn@1"}, "current": {"model": "churn-rf"}, "target": "churned",
        "html": True, "title": "training vs traffic"})
    assert window.status_code == 200, window.text
    report = window.json()
    assert report["report"]["n_current"] == 60 and report["report"]["dataset_drift"] is True
    assert "training vs traffic" in report["html"] and "<svg" in report["html"]
    error(api.post("/api/v1/monitoring/drift", json={"reference": {"data": "churn@1"}, "current": {"model": "x"}}),
          400, "INVALID", "reference.data")
