"""The unmodified mlflow client (mlflow-skinny in its own venv) against ``conveyor server``.

Each script runs in the mlflow venv with ``MLFLOW_TRACKING_URI`` pointing at a real server
subprocess; the assertions then read the data back through conveyor's own API.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fixtures.mlflow_client import SRC, Server, clean_env, run_mlflow

pytestmark = pytest.mark.slow

TRACKING = """
import json, mlflow
from mlflow import MlflowClient

exp_id = mlflow.create_experiment("mlflow-made", tags={"team": "fraud"})
mlflow.set_experiment("mlflow-made")
ids = []
for i, (depth, losses) in enumerate([(3, [0.9, 0.6, 0.4]), (8, [0.8, 0.3, 0.1])]):
    with mlflow.start_run(run_name=f"gbm-{i}") as run:
        mlflow.log_param("depth", depth)
        for step, loss in enumerate(losses):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.set_tag("stage", "dev")
        mlflow.log_params({"lr": 0.1, "trees": 100})
        mlflow.log_metrics({"auc": 0.7 + i / 10, "f1": 0.5})
        mlflow.set_tags({"owner": "ana", "idx": str(i)})
        ids.append(run.info.run_id)
client = MlflowClient()
history = [(m.step, m.value) for m in client.get_metric_history(ids[1], "loss")]
found = mlflow.search_runs(experiment_ids=[exp_id], filter_string="metrics.loss < 0.5 and params.depth = '8'",
                           output_format="list")
ordered = client.search_runs([exp_id], order_by=["metrics.auc DESC"], max_results=1)
page2 = client.search_runs([exp_id], order_by=["metrics.auc DESC"], max_results=1, page_token=ordered.token)
client.delete_tag(ids[0], "idx")
client.log_batch(ids[0], metrics=[], params=[], tags=[mlflow.entities.RunTag("batched", "yes")])
got = client.get_run(ids[0])
by_name = client.get_experiment_by_name("mlflow-made").experiment_id
missing = client.get_experiment_by_name("never-made")
exps = [e.name for e in client.search_experiments(filter_string="name LIKE 'mlflow%'")]
try:
    client.get_run("0" * 32)
    err = None
except mlflow.exceptions.MlflowException as e:
    err = e.error_code
print(json.dumps({"exp_id": exp_id, "ids": ids, "history": history, "found": [r.info.run_id for r in found],
                  "ordered": [r.info.run_name for r in ordered], "page2": [r.info.run_name for r in page2],
                  "status": got.info.status, "tags": got.data.tags, "by_name": by_name, "missing": missing is None,
                  "exps": exps, "err": err}))
"""


def test_mlflow_client_tracking(mlflow_python: Path, live_server: Server, tmp_path: Path) -> None:
    out = run_mlflow(mlflow_python, live_server, TRACKING, tmp_path)
    assert out["history"] == [[0, 0.8], [1, 0.3], [2, 0.1]]
    assert out["found"] == [out["ids"][1]]
    assert out["ordered"] == ["gbm-1"] and out["page2"] == ["gbm-0"]
    assert out["status"] == "FINISHED" and out["tags"]["batched"] == "yes" and "idx" not in out["tags"]
    assert out["by_name"] == out["exp_id"] and out["missing"] is True
    assert out["exps"] == ["mlflow-made"] and out["err"] == "RESOURCE_DOES_NOT_EXIST"

    # what mlflow logged is conveyor's: same runs, searchable with conveyor's API
    tracker = live_server.tracker()
    try:
        runs = tracker.search_runs("mlflow-made", "metrics.loss < 0.5", order_by=["metrics.loss"], output="runs")
        assert [r.name for r in runs] == ["gbm-1", "gbm-0"]
        best = runs[0]
        assert best.status == "FINISHED" and best.params == {"depth": "8", "lr": "0.1", "trees": "100"}
        assert best.metrics == {"loss": 0.1, "auc": pytest.approx(0.8), "f1": 0.5}
        assert best.tags["owner"] == "ana" and best.tags["stage"] == "dev"
        assert [(m.step, m.value) for m in tracker.metric_history(best.id, "loss")] == [(0, 0.8), (1, 0.3), (2, 0.1)]
        assert tracker.get_experiment("mlflow-made").tags == {"team": "fraud"}
    finally:
        tracker.close()
    listed = subprocess.run([sys.executable, "-m", "conveyor", "runs", "list", "--json"], cwd=live_server.root,
                            env={**clean_env(), "PYTHONPATH": str(SRC)}, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    names = {r["name"] for r in json.loads(listed.stdout) if r["experiment"] == "mlflow-made"}
    assert names == {"gbm-0", "gbm-1"}


def test_conveyor_run_seen_by_mlflow(mlflow_python: Path, live_server: Server, tmp_path: Path) -> None:
    tracker = live_server.tracker()
    try:
        run = tracker.create_run("native", name="from-conveyor", capture=False)
        tracker.log_params(run.id, {"alpha": 0.5})
        for step in range(3):
            tracker.log_metric(run.id, "rmse", 1.0 / (step + 1), step=step)
        tracker.end_run(run.id)
    finally:
        tracker.close()
    out: Any = run_mlflow(mlflow_python, live_server, f"""
        import json, mlflow
        from mlflow import MlflowClient
        client = MlflowClient()
        exp = client.get_experiment_by_name("native")
        runs = client.search_runs([exp.experiment_id], filter_string="params.alpha = '0.5'")
        r = client.get_run("{run.id}")
        print(json.dumps({{"names": [x.info.run_name for x in runs], "params": r.data.params, "metrics": r.data.metrics,
                          "status": r.info.status,
                          "history": [m.value for m in client.get_metric_history("{run.id}", "rmse")]}}))
    """, tmp_path)
    assert out["names"] == ["from-conveyor"] and out["params"] == {"alpha": "0.5"} and out["status"] == "FINISHED"
    assert out["metrics"] == {"rmse": pytest.approx(1 / 3)}
    assert out["history"] == pytest.approx([1.0, 0.5, 1 / 3])
