"""Artifacts through MLflow's proxied artifact API, with the real mlflow client."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.mlflow_client import Server, run_mlflow

pytestmark = pytest.mark.slow

SCRIPT = """
import json, os, mlflow
from mlflow import MlflowClient

os.makedirs("out/model", exist_ok=True)
open("report.txt", "w").write("accuracy 0.93\\n")
open("out/model/weights.bin", "wb").write(bytes(range(256)) * 4000)
open("out/model/config.json", "w").write('{"depth": 5}')
open("out/notes with space.md", "w").write("# notes")
mlflow.set_experiment("arts")
with mlflow.start_run() as run:
    mlflow.log_artifact("report.txt")
    mlflow.log_artifact("report.txt", artifact_path="reports/2026")
    mlflow.log_artifacts("out", artifact_path="bundle")
    mlflow.log_dict({"a": 1}, "meta/info.json")
client = MlflowClient()
top = [(f.path, f.is_dir) for f in client.list_artifacts(run.info.run_id)]
inner = [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run.info.run_id, "bundle/model")]
local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="bundle", dst_path="dl")
files = sorted(os.path.relpath(os.path.join(d, f), local) for d, _, fs in os.walk(local) for f in fs)
same = open(os.path.join(local, "model", "weights.bin"), "rb").read() == open("out/model/weights.bin", "rb").read()
text = open(client.download_artifacts(run.info.run_id, "reports/2026/report.txt", "dl2")).read()
print(json.dumps({"run_id": run.info.run_id, "top": top, "inner": inner, "files": files, "same": same, "text": text}))
"""


def test_mlflow_client_artifacts(mlflow_python: Path, live_server: Server, tmp_path: Path) -> None:
    out = run_mlflow(mlflow_python, live_server, SCRIPT, tmp_path)
    assert out["top"] == [["bundle", True], ["meta", True], ["report.txt", False], ["reports", True]]
    assert out["inner"] == [["bundle/model/config.json", False, 12], ["bundle/model/weights.bin", False, 1024000]]
    assert out["files"] == ["model/config.json", "model/weights.bin", "notes with space.md"]
    assert out["same"] is True and out["text"] == "accuracy 0.93\n"

    # stored content-addressed and listed as the run's artifacts by conveyor itself
    tracker = live_server.tracker()
    try:
        paths = [a.path for a in tracker.list_artifacts(out["run_id"])]
        assert paths == ["bundle/model/config.json", "bundle/model/weights.bin", "bundle/notes with space.md",
                         "meta/info.json", "report.txt", "reports/2026/report.txt"]
        assert tracker.read_artifact(out["run_id"], "report.txt") == b"accuracy 0.93\n"
        one, two = (tracker.get_artifact(out["run_id"], p) for p in ("report.txt", "reports/2026/report.txt"))
        assert one.digest == two.digest and one.digest.startswith("blake3:")
    finally:
        tracker.close()
