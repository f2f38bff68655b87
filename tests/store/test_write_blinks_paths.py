"""The MLflow server's writes, a retraining's start and a pipeline step's start ride out a
PostgreSQL blink and take effect exactly once.

Same faults as ``test_write_blinks.py``: a TCP proxy in front of the real server is cut
when the statement that writes the table is about to run (``reset``: the transaction rolls
back and is retried), or the COMMIT reaches the server and its answer is swallowed
(``lost_ack``: the client cannot know and retries; it must not write twice). Rows are
counted afterwards around the proxy.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from conveyor.store import metrics, params, retrain_triggers, runs, step_executions
from conveyor.tracking import Tracker
from fixtures.asgi import server_client
from fixtures.proxy import TcpProxy, arm_fault, count_rows, pg_proxy, proxied  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
FAULTS = ["reset", "lost_ack"]
API = "/api/2.0/mlflow"


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("fault", FAULTS)
def test_an_mlflow_run_create_makes_one_run(
    proxied: tuple[TcpProxy, Tracker], postgres_url: str, fault: str
) -> None:
    proxy, tracker = proxied
    client = server_client(tracker)
    try:
        exp = _ok(client.post(f"{API}/experiments/create", json={"name": f"blink-create-{fault}"}))["experiment_id"]
        fired = arm_fault(tracker, proxy, "INTO runs", fault)
        run = _ok(client.post(f"{API}/runs/create", json={
            "experiment_id": exp, "run_name": "through a blink", "start_time": 1_700_000_000_000,
            "tags": [{"key": "team", "value": "ml"}]}))["run"]
        assert fired
        assert proxy.commits_cut == (1 if fault == "lost_ack" else 0)
        assert run["info"]["run_name"] == "through a blink"
        assert {t["key"]: t["value"] for t in run["data"]["tags"]}["team"] == "ml"
        listed = _ok(client.post(f"{API}/runs/search", json={"experiment_ids": [exp]}))["runs"]
        assert [r["info"]["run_id"] for r in listed] == [run["info"]["run_id"]]
    finally:
        client.close()
    assert count_rows(postgres_url, select(func.count()).select_from(runs).where(runs.c.experiment_id == int(exp))) == 1


@pytest.mark.parametrize("fault", FAULTS)
def test_an_mlflow_log_batch_writes_each_point_once(
    proxied: tuple[TcpProxy, Tracker], postgres_url: str, fault: str
) -> None:
    proxy, tracker = proxied
    client = server_client(tracker)
    try:
        exp = _ok(client.post(f"{API}/experiments/create", json={"name": f"blink-batch-{fault}"}))["experiment_id"]
        run_id = _ok(client.post(f"{API}/runs/create", json={"experiment_id": exp}))["run"]["info"]["run_id"]
        fired = arm_fault(tracker, proxy, "INTO metrics", fault)
        points = [{"key": "loss", "value": 1.0 / (step + 1), "timestamp": 1_700_000_000_000 + step, "step": step}
                  for step in range(50)]
        _ok(client.post(f"{API}/runs/log-batch", json={
            "run_id": run_id, "metrics": points, "params": [{"key": "lr", "value": "0.1"}],
            "tags": [{"key": "phase", "value": "blink"}]}))
        assert fired
        assert proxy.commits_cut == (1 if fault == "lost_ack" else 0)
        history = _ok(client.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}))
        assert sorted(p["step"] for p in history["metrics"]) == list(range(50))
        data = _ok(client.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]["data"]
        assert {p["key"]: p["value"] for p in data["params"]} == {"lr": "0.1"}
    finally:
        client.close()
    assert count_rows(postgres_url, select(func.count()).select_from(metrics).where(metrics.c.run_id == run_id)) == 50
    assert count_rows(postgres_url, select(func.count()).select_from(params).where(params.c.run_id == run_id)) == 1


@pytest.mark.parametrize("fault", FAULTS)
def test_a_retraining_starts_once(proxied: tuple[TcpProxy, Tracker], postgres_url: str, fault: str) -> None:
    from conveyor.monitoring import ContinuousTrainer, RetrainOutcome

    proxy, tracker = proxied
    started: list[int] = []

    def hook(model: str, trigger_id: int) -> RetrainOutcome:
        started.append(trigger_id)
        return RetrainOutcome(None, 2, True, "gate passed")

    model = f"blinky-{fault}"
    fired = arm_fault(tracker, proxy, "INTO retrain_triggers", fault)
    row = ContinuousTrainer(tracker, hook, cooldown=0).trigger(model, "drift")
    assert fired
    assert proxy.commits_cut == (1 if fault == "lost_ack" else 0)
    assert row.status == "promoted" and started == [row.id]
    assert count_rows(postgres_url, select(func.count()).select_from(retrain_triggers)
                  .where(retrain_triggers.c.model == model)) == 1


@pytest.mark.parametrize("fault", FAULTS)
def test_a_skipped_retraining_is_recorded_once(
    proxied: tuple[TcpProxy, Tracker], postgres_url: str, fault: str
) -> None:
    from conveyor.monitoring import ContinuousTrainer, RetrainOutcome

    proxy, tracker = proxied
    model = f"cooling-{fault}"
    trainer = ContinuousTrainer(tracker, lambda m, t: RetrainOutcome(None, 2, True, "gate passed"), cooldown=3600)
    assert trainer.trigger(model, "drift").status == "promoted"
    fired = arm_fault(tracker, proxy, "INTO retrain_triggers", fault)
    skipped = trainer.trigger(model, "drift")  # within the cool-down: a skip row
    assert fired and skipped.status == "skipped" and skipped.decision.startswith("cool-down")
    assert proxy.commits_cut == (1 if fault == "lost_ack" else 0)
    assert count_rows(postgres_url, select(func.count()).select_from(retrain_triggers)
                  .where(retrain_triggers.c.model == model)) == 2


@pytest.mark.parametrize("fault", FAULTS)
def test_a_pipeline_step_starts_once(proxied: tuple[TcpProxy, Tracker], postgres_url: str, fault: str) -> None:
    from conveyor.pipelines import _record

    proxy, tracker = proxied
    parent = tracker.create_run(f"pipeline-{fault}")
    with tracker.store.write() as conn:  # the pipeline run's own row, as the runner makes it
        _record.repo.create_run(conn, parent.id, "blinky", "local", {"nodes": ["train"]})
    fired = arm_fault(tracker, proxy, "INTO step_executions", fault)
    run_id = _record.open_step(tracker, parent.experiment_id, parent.id, "train", "k" * 64,
                               {"alpha": 0.5, "layers": [8, 4]}, "miss")
    assert fired
    assert proxy.commits_cut == (1 if fault == "lost_ack" else 0)
    child = tracker.get_run(run_id)
    assert child.parent_id == parent.id and child.params == {"alpha": "0.5", "layers": "[8, 4]"}
    assert child.tags["conveyor.step"] == "train"
    assert count_rows(postgres_url, select(func.count()).select_from(runs).where(runs.c.parent_id == parent.id)) == 1
    assert count_rows(postgres_url, select(func.count()).select_from(step_executions)
                  .where(step_executions.c.pipeline_run_id == parent.id)) == 1
