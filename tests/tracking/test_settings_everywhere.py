"""One settings object reaches every code path: each entry point (CLI, Python API, pipeline
run from the CLI and from Python, sweeps, the local executor's workers) runs with only
``conveyor.toml`` set, then with only environment variables, against PostgreSQL + S3
(moto), and the test checks where every byte landed: the runs in PostgreSQL, every
referenced object in the bucket, nothing in the project folder."""

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
