"""Registered models, versions and aliases through the real mlflow client."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.mlflow_client import Server, run_mlflow

pytestmark = pytest.mark.slow

# The registry holds conveyor model packages only (a version is READY once its package
# loads): the client uploads two packages made by conveyor, and an MLflow-format folder,
# which registering refuses with a clear INVALID_PARAMETER_VALUE.
SCRIPT = """
import json, os, mlflow
from mlflow import MlflowClient

os.makedirs("foreign", exist_ok=True)
open("foreign/MLmodel", "w").write("flavors: {}\\n")
open("foreign/weights.bin", "wb").write(b"w" * 1000)
mlflow.set_experiment("reg")
with mlflow.start_run() as run:
    mlflow.log_artifacts("PKG1", artifact_path="model")
    mlflow.log_artifacts("PKG2", artifact_path="model2")
    mlflow.log_artifacts("foreign", artifact_path="foreign")
client = MlflowClient()
created = client.create_registered_model("churn", description="churn classifier")
v1 = client.create_model_version("churn", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
v2 = client.create_model_version("churn", f"runs:/{run.info.run_id}/model2", run_id=run.info.run_id)
try:
    client.create_model_version("churn", f"runs:/{run.info.run_id}/foreign", run_id=run.info.run_id)
    foreign = None
except mlflow.exceptions.MlflowException as e:
    foreign = [e.error_code, "not a conveyor model package" in str(e)]
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
                  "foreign": foreign,
                  "gone": gone, "dup": dup, "got_source": got.source, "aliases": model.aliases,
                  "description": model.description, "found": found, "versions": versions, "by_run": by_run}))
"""


def _packages(folder: Path) -> tuple[Path, Path]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression, Ridge

    import conveyor.models

    X = np.random.default_rng(0).normal(size=(40, 3))
    conveyor.models.save(LogisticRegression().fit(X, X[:, 0] > 0), folder / "pkg1", input_example=X[:3])
    conveyor.models.save(Ridge().fit(X, X.sum(axis=1)), folder / "pkg2", input_example=X[:3])
    return folder / "pkg1", folder / "pkg2"


def test_mlflow_client_registry(mlflow_python: Path, live_server: Server, tmp_path: Path) -> None:
    pkg1, pkg2 = _packages(tmp_path)
    script = SCRIPT.replace('"PKG1"', repr(str(pkg1))).replace('"PKG2"', repr(str(pkg2)))
    out = run_mlflow(mlflow_python, live_server, script, tmp_path)
    assert out["foreign"] == ["INVALID_PARAMETER_VALUE", True]
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
        assert "conveyor-model.json" in [e.path for e in manifest.entries]
        kinds = [(e.kind, e.alias) for e in registry.history("churn")]
        assert ("alias", "champion") in kinds and ("alias_deleted", "challenger") in kinds
    finally:
        tracker.close()
