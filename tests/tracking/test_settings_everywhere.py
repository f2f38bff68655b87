"""One settings object reaches every code path: each entry point (CLI, Python API, pipeline
run from the CLI and from Python, sweeps, the local executor's workers, ``conveyor serve``
reading the registry and writing the prediction log, ``conveyor monitor run`` and the
retraining it triggers) runs with only ``conveyor.toml`` set, then with only environment
variables, against PostgreSQL + S3 (moto), and the test checks where every byte landed:
the rows in PostgreSQL, every referenced object in the bucket, nothing in the project folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conveyor.store import Store, runs

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]

FLOW = """
from conveyor.pipelines import pipeline, step

@step
def numbers(n: int = 3) -> list:
    return [float(i) for i in range(n)]

@step(metrics=True)
def stats(rows: list) -> dict:
    return {"mean": sum(rows) / len(rows), "n": float(len(rows))}

@pipeline
def flow(n: int = 3):
    stats(numbers(n=n))
"""

API = """
import conveyor
with conveyor.start_run(experiment="api") as run:
    conveyor.log_params({"alpha": 0.5, "model": "ridge"})
    for step in range(20):
        conveyor.log_metric("loss", 1.0 / (step + 1), step=step)
    conveyor.log_text("hello from the API", "notes/readme.txt")
    conveyor.log_dict({"k": [1, 2, 3]}, "config.json")
"""

PIPELINES_API = """
import conveyor.pipelines as cp
from flowmod import flow
result = cp.run(flow, params={"n": 5}, experiment="pyapi")
assert result.ok, {k: v.error for k, v in result.steps.items()}
"""


def _env(mode: str, store_env: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    return {**base, **store_env} if mode == "env" else base


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("mode", ["toml", "env"])
def test_every_entry_point_writes_where_the_settings_say(
    mode: str, tmp_path: Path, postgres_url: str, s3_server: str, s3_bucket_url: str
) -> None:
    import boto3

    project = tmp_path / "project"
    project.mkdir()
    (project / "flowmod.py").write_text(textwrap.dedent(FLOW), encoding="utf-8")
    artifacts = f"{s3_bucket_url}/conveyor"
    store_env = {
        "CONVEYOR_STORE_METADATA_URL": postgres_url,
        "CONVEYOR_STORE_ARTIFACTS_URL": artifacts,
        "CONVEYOR_STORE_S3_ENDPOINT_URL": s3_server,
    }
    if mode == "toml":
        (project / "conveyor.toml").write_text(
            f'[store]\nmetadata_url = "{postgres_url}"\nartifacts_url = "{artifacts}"\n'
            f's3_endpoint_url = "{s3_server}"\n',
            encoding="utf-8",
        )
    env = _env(mode, store_env)
    conveyor = [sys.executable, "-m", "conveyor"]
    if mode == "toml":
        _run([*conveyor, "init", "."], project, env)
    else:
        _run([*conveyor, "db", "upgrade"], project, env)
    _run([sys.executable, "-c", textwrap.dedent(API)], project, env)
    _run([*conveyor, "pipeline", "run", "flowmod:flow", "-p", "n=4", "--json"], project, env)
    out = _run([*conveyor, "pipeline", "sweep", "flowmod:flow", "--grid", "n=2,6", "--metric", "mean",
                "--maximize", "--json"], project, env)
    assert json.loads(out)
    _run([sys.executable, "-c", textwrap.dedent(PIPELINES_API)], project, env)
    doctor = json.loads(_run([*conveyor, "doctor", "--json"], project, env))

    # the metadata: every run in PostgreSQL
    store = Store.open(postgres_url)
    with store.read() as conn:
        count = conn.execute(select(func.count()).select_from(runs)).scalar_one()
        unfinished = conn.execute(select(func.count()).where(runs.c.status != "FINISHED")).scalar_one()
    store.close()
    # api 1; pipeline run 1 + 2 steps; sweep 2 × 3; pipelines.run 3
    assert count == 1 + 3 + 6 + 3 and unfinished == 0
    # the bytes: every referenced object in the bucket, verified by doctor
    assert doctor["healthy"] and doctor["checked"] > 0 and doctor["missing"] == []
    bucket = s3_bucket_url.removeprefix("s3://")
    listed = boto3.client("s3", endpoint_url=s3_server).list_objects_v2(Bucket=bucket, Prefix="conveyor/")
    assert listed.get("KeyCount", 0) >= doctor["checked"]
    # and nothing in the project folder but the code, the config and the ignore file
    left = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()
                  and "__pycache__" not in p.parts)
    expected = ["flowmod.py"] + (["conveyor.toml"] if mode == "toml" else [])
    assert [p for p in left if not p.startswith(".conveyor/.gitignore")] == sorted(expected)


# -- serving, monitoring and the retraining hook -------------------------------------------------

TRAINING = """
from conveyor.pipelines import dataset, pipeline, step

@step
def fit(frame) -> dict:
    import conveyor
    import conveyor.models
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=300).fit(frame[["a", "b"]], frame["y"])
    conveyor.models.log(model, "model", input_example=frame[["a", "b"]].head(3))
    return {"rows": len(frame)}

@pipeline(candidate="fit")
def retrain():
    fit(dataset("train"))
"""

LOOP_TOML = """
[pipelines]
experiment = "continuous-training"
max_workers = 1

[gates.lenient]
model = "churn"
label = "y"
data = "data:/holdout@1"
metrics = ["accuracy >= 0.5"]
data_checks = false

[monitors.drift]
model = "churn"
reference = "data:/train@1"
target = "y"
window = "1h"
rules = ["drift_share > 0.3"]
retrain = true
pipeline = "training:retrain"
gate = "lenient"
cooldown = "1h"
"""

FRAME = """
import numpy as np, pandas as pd

def frame(n, shifted, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(3.0 if shifted else 0.0, 1.0, n)
    b = rng.normal(-2.0 if shifted else 0.0, 1.0, n)
    y = (a - b > 5.0) if shifted else (a + b > 0.0)
    return pd.DataFrame({"a": a, "b": b, "y": y.astype(int)})
"""

CHAMPION = FRAME + """
import pandas as pd
import conveyor.data
from conveyor.cli._pipeline import load_pipeline
from conveyor.gates import evaluate, promote
from conveyor.pipelines import train_candidate
from conveyor.registry import Registry
from conveyor.tracking import get_tracker

conveyor.data.add(frame(300, False, 1), name="train")
conveyor.data.add(pd.concat([frame(50, False, 5), frame(150, True, 2)], ignore_index=True), name="holdout")
result = train_candidate(load_pipeline("training:retrain"))   # the pipeline worker writes the model
registry = Registry(get_tracker())
registry.register(result.candidate, "churn")
assert evaluate("lenient", "models:/churn/1", registry=registry).passed
promote("churn", 1, registry=registry, reason="first model")
"""

NEW_DATA = FRAME + """
import conveyor.data
conveyor.data.add(frame(300, True, 3), name="train")
"""


def _serve_traffic(project: Path, env: dict[str, str]) -> int:
    """``conveyor serve`` as a real process: shifted traffic and its labels, then SIGTERM
    (which flushes the prediction log). Returns the rows answered."""
    import signal
    import time

    import httpx

    from fixtures.mlflow_client import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "serve", "models:/churn@champion", "--port", str(port),
         "--log-level", "warning"], cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        import numpy as np

        rng = np.random.default_rng(4)
        rows = 0
        for start in range(6):
            a = rng.normal(3.0, 1.0, 40)
            b = rng.normal(-2.0, 1.0, 40)
            rid = f"req-{start}"
            answer = httpx.post(f"{url}/invocations", headers={"x-request-id": rid}, timeout=30, json={
                "dataframe_split": {"columns": ["a", "b"], "data": np.c_[a, b].tolist()}})
            assert answer.status_code == 200, answer.text
            labels = (a - b > 5.0).astype(int).tolist()
            httpx.post(f"{url}/v2/models/churn/feedback", timeout=30,
                       json={"request_id": rid, "labels": labels}).raise_for_status()
            rows += 40
        proc.send_signal(signal.SIGTERM)
        # graceful: uvicorn finishes, the log writer flushes, then the signal ends the process
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM), proc.stderr.read().decode() if proc.stderr else ""
        return rows
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("mode", ["toml", "env"])
def test_serving_monitoring_and_retraining_write_where_the_settings_say(
    mode: str, tmp_path: Path, postgres_url: str, s3_server: str, s3_bucket_url: str
) -> None:
    """The model's training (a pipeline worker), ``conveyor serve`` (the registry read, the
    prediction log written), ``conveyor monitor run`` and the retraining it triggers: all in
    PostgreSQL and the bucket, with the store settings only in ``conveyor.toml`` or only in
    the environment."""
    from conveyor.blobs import BlobStore, Digest
    from conveyor.store import model_versions, monitor_evaluations, retrain_triggers, serving_log_files

    project = tmp_path / "project"
    project.mkdir()
    (project / "training.py").write_text(textwrap.dedent(TRAINING), encoding="utf-8")
    artifacts = f"{s3_bucket_url}/loop"
    store_toml = (f'[store]\nmetadata_url = "{postgres_url}"\nartifacts_url = "{artifacts}"\n'
                  f's3_endpoint_url = "{s3_server}"\n')
    (project / "conveyor.toml").write_text((store_toml if mode == "toml" else "") + LOOP_TOML, encoding="utf-8")
    env = _env(mode, {
        "CONVEYOR_STORE_METADATA_URL": postgres_url,
        "CONVEYOR_STORE_ARTIFACTS_URL": artifacts,
        "CONVEYOR_STORE_S3_ENDPOINT_URL": s3_server,
    })
    conveyor = [sys.executable, "-m", "conveyor"]
    _run([*conveyor, "db", "upgrade"], project, env)
    _run([sys.executable, "-c", textwrap.dedent(CHAMPION)], project, env)
    served = _serve_traffic(project, env)
    _run([sys.executable, "-c", textwrap.dedent(NEW_DATA)], project, env)
    done = subprocess.run([*conveyor, "monitor", "run", "--json"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr  # an alert fired
    (evaluation,) = json.loads(done.stdout)
    (trigger,) = evaluation["triggers"]
    assert trigger["status"] == "promoted", trigger
    doctor = json.loads(_run([*conveyor, "doctor", "--json"], project, env))

    store = Store.open(postgres_url)
    with store.read() as conn:
        logged = conn.execute(select(serving_log_files.c.kind, serving_log_files.c.rows,
                                     serving_log_files.c.digest)).all()
        versions = conn.execute(select(func.count()).select_from(model_versions)).scalar_one()
        evaluations = conn.execute(select(func.count()).select_from(monitor_evaluations)).scalar_one()
        triggers = conn.execute(select(retrain_triggers.c.status)).scalars().all()
        retrain_run = conn.execute(select(runs.c.status).where(runs.c.id == trigger["run_id"])).scalar_one()
    store.close()
    # the prediction log (requests and feedback) is indexed in PostgreSQL ...
    assert sum(r for kind, r, _ in logged if kind != "feedback") == served
    assert {kind for kind, _, _ in logged} >= {"feedback"} and len({k for k, _, _ in logged}) >= 2
    # ... the evaluation, the trigger, the retrained version and its pipeline run too
    assert evaluations == 1 and triggers == ["promoted"] and versions == 2 and retrain_run == "FINISHED"
    # every byte in the bucket: what doctor checks (models, data, step outputs, logs) and the
    # prediction log's Parquet objects
    assert doctor["healthy"] and doctor["checked"] > 0 and doctor["missing"] == []
    blobs = BlobStore.open(artifacts, s3_endpoint_url=s3_server)
    assert all(blobs.exists(Digest.parse(digest)) for _, _, digest in logged)
    left = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()
                  and "__pycache__" not in p.parts and not str(p.relative_to(project)).startswith(".conveyor/.gitignore"))
    assert left == ["conveyor.toml", "training.py"]
