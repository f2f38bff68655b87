"""conveyor's entities as MLflow's JSON messages (proto field names, int64 as numbers)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from conveyor.entities import Experiment, Run

#: MLflow's client runs in experiment "0" when none is set; conveyor calls it "Default".
MLFLOW_DEFAULT_ID = "0"


def artifact_uri(run: Run) -> str:
    """Where the mlflow client sends a run's artifacts: the server's proxied artifact API."""
    return f"mlflow-artifacts:/{run.experiment_id}/{run.id}/artifacts"


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def metric_value(value: float) -> Any:
    """NaN and ±inf as the strings MLflow's JSON uses; other values as numbers."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def experiment(exp: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": str(exp.id),
        "name": exp.name,
        "artifact_location": f"mlflow-artifacts:/{exp.id}",
        "lifecycle_stage": "deleted" if exp.archived else "active",
        "creation_time": exp.created_at,
        "last_update_time": exp.created_at,
        "tags": tag_list(exp.tags),
    }


def run_info(run: Run) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": run.id,
        "run_uuid": run.id,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.user,
        "status": run.status.value,
        "start_time": run.start_time,
        "artifact_uri": artifact_uri(run),
        "lifecycle_stage": "deleted" if run.deleted else "active",
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def run(run: Run, latest: Mapping[str, tuple[int, int]] | None = None) -> dict[str, Any]:
    """``latest`` gives (step, timestamp) of each metric's latest value when known."""
    latest = latest or {}
    metrics = []
    for key, value in run.metrics.items():
        step, stamp = latest.get(key, (0, run.start_time))
        metrics.append({"key": key, "value": metric_value(value), "timestamp": stamp, "step": step})
    return {
        "info": run_info(run),
        "data": {
            "metrics": metrics,
            "params": tag_list(run.params),
            "tags": tag_list(run.tags),
        },
        "inputs": {},
    }
