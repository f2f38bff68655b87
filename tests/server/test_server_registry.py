"""Registered models, versions and aliases through the real mlflow client."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.mlflow_client import Server, run_mlflow

pytestmark = pytest.mark.slow

SCRIPT = """
import json, os, mlflow
from mlflow import MlflowClient

os.makedirs("model", exist_ok=True)
open("model/MLmodel", "w").write("flavors: {}\\n")
open("model/weights.bin", "wb").write(b"w" * 1000)
open("scaler.pkl", "wb").write(b"s" * 10)
mlflow.set_experiment("reg")
with mlflow.start_run() as run:
    mlflow.log_artifacts("model", artifact_path="model")
    mlflow.log_artifact("scaler.pkl")
client = MlflowClient()
created = client.create_registered_model("churn", description="churn classifier")
v1 = client.create_model_version("churn", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
v2 = client.create_model_version("churn", f"runs:/{run.info.run_id}/scaler.pkl", run_id=run.info.run_id)
client.set_registered_model_alias("churn", "champion", v1.version)
client.set_registered_model_alias("churn", "challenger", v2.version)
champion = client.get_model_version_by_alias("churn", "champion")
client.delete_registered_model_alias("churn", "challenger")
try:
    client.get_model_version_by_alias("churn", "challenger")
    gone = False
except mlflow.exceptions.MlflowException as e:
    gone = e.error_code == "RESOURCE_DOES_NOT_EXIST"
try:
    client.create_registered_model("churn")
    dup = None
except mlflow.exceptions.MlflowException as e:
    dup = e.error_code
got = client.get_model_version("churn", "2")
model = client.get_registered_model("churn")
found = [m.name for m in client.search_registered_models(filter_string="name LIKE 'ch%'")]
versions = [v.version for v in client.search_model_versions("name = 'churn'")]
by_run = [v.version for v in client.search_model_versions(f"run_id = '{run.info.run_id}' and name = 'churn'")]
print(json.dumps({"run_id": run.info.run_id, "v": [v1.version, v2.version], "champion": champion.version,
                  "gone": gone, "dup": dup, "got_source": got.source, "aliases": model.aliases,
                  "description": model.description, "found": found, "versions": versions, "by_run": by_run}))
"""


def test_mlflow_client_registry(mlflow_python: Path, live_server: Server, tmp_path: Path) -> None:
    out = run_mlflow(mlflow_python, live_server, SCRIPT, tmp_path)
    assert out["v"] == ["1", "2"] and out["champion"] == "1" and out["gone"] is True
    assert out["dup"] == "RESOURCE_ALREADY_EXISTS" and out["aliases"] == {"champion": "1"}
    assert out["description"] == "churn classifier" and out["found"] == ["churn"]
    assert out["versions"] == ["2", "1"] and out["by_run"] == ["2", "1"]

    from conveyor.registry import Registry

    tracker = live_server.tracker()
    try:
        registry = Registry(tracker)
        ref = registry.resolve("models:/churn@champion")
        assert ref.version == 1
        v1 = registry.get_version("churn", 1)
        assert v1.run_id == out["run_id"] and v1.source == f"runs:/{out['run_id']}/model"
        manifest = tracker.blobs.read_manifest(__import__("conveyor.blobs", fromlist=["Digest"]).Digest.parse(v1.digest))
        assert [e.path for e in manifest.entries] == ["MLmodel", "weights.bin"]
        kinds = [(e.kind, e.alias) for e in registry.history("churn")]
        assert ("alias", "champion") in kinds and ("alias_deleted", "challenger") in kinds
    finally:
        tracker.close()
