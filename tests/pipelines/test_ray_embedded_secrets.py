"""Embedded mode on a real Ray head, PostgreSQL and moto S3: the store settings and the S3
credentials travel in each step's task argument (Ray neither logs nor shows it), never in
the runtime_env that Ray's runtime env agent logs on every node. The pipeline works (its
outputs land in the bucket, its runs in PostgreSQL) while the AWS secret key, the session
token and the database password (each with a marker) appear in no file of the Ray session,
no step log and no error text: a step that prints or raises them gets ``***``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

STEPS = """
import os

@step
def table(k: int) -> dict:
    print("secret key", os.environ.get("AWS_SECRET_ACCESS_KEY"), "token", os.environ.get("AWS_SESSION_TOKEN"))
    print("store", os.environ.get("CONVEYOR_STORE_ARTIFACTS_URL"))
    return {"k": k, "rows": [k * i for i in range(5)]}

@step
def total(table: dict) -> int:
    return sum(table["rows"])

@pipeline
def flow(k: int = 3):
    total(table=table(k=k))

@step
def leak(table: dict) -> int:
    raise ValueError("broken on purpose, key=" + os.environ["AWS_SECRET_ACCESS_KEY"])

@pipeline
def failing():
    leak(table=table(k=1))
"""


def _ray_session_files() -> list[Path]:
    import ray

    session = Path(ray._private.worker.global_worker.node.get_session_dir_path())  # noqa: SLF001
    return [p for p in session.rglob("*") if p.is_file() and not p.is_symlink()]


@pytest.fixture
def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, s3_server: str,
            s3_bucket_url: str) -> Iterator[dict[str, Any]]:
    """A project on PostgreSQL (a URL with a password, which trust auth ignores) and S3 (fake
    keys moto accepts), every secret carrying its own marker."""
    from conveyor.models import set_trust
    from conveyor.settings import Settings
    from conveyor.tracking import Tracker, set_tracker

    for key in list(os.environ):
        if key.startswith("CONVEYOR_") and key not in ("CONVEYOR_REQUIRE_SERVICES", "CONVEYOR_TEST_POSTGRES"):
            monkeypatch.delenv(key)
    marker = uuid.uuid4().hex[:10]
    found = {"key": f"aws-secret-{marker}-key", "token": f"aws-session-{marker}-token",
             "password": f"s3cret-{marker}-pw"}
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", f"AKIA{marker.upper()}")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", found["key"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", found["token"])
    scheme = "postgresql+psycopg://"
    url = postgres_url.replace(f"{scheme}postgres@", f"{scheme}postgres:{found['password']}@", 1)
    assert found["password"] in url
    root = tmp_path / "project"
    root.mkdir()
    (root / "conveyor.toml").write_text(
        f'[tracking]\nflush_interval = 0.05\n[store]\nartifacts_url = "{s3_bucket_url}/c"\n'
        f's3_endpoint_url = "{s3_server}"\n[ray]\nship_code = false\n', encoding="utf-8")
    monkeypatch.setenv("CONVEYOR_STORE_METADATA_URL", url)
    monkeypatch.chdir(root)
    tracker = Tracker.from_settings(Settings.load(root), create=True, remote=False)
    set_tracker(tracker)
    set_trust(None)
    try:
        yield {"tracker": tracker, "bucket": s3_bucket_url.removeprefix("s3://"), "endpoint": s3_server,
               "url": url, **found}
    finally:
        set_tracker(None)
        set_trust(None)
        tracker.close()


@pytest.mark.ray
@pytest.mark.s3
@pytest.mark.postgres
@pytest.mark.slow
def test_embedded_ray_steps_get_store_secrets_outside_ray_logs(
    ray_cluster: str, pipes: Any, secrets: dict[str, Any]
) -> None:
    import boto3
    import psycopg

    import conveyor.pipelines as cp
    from conveyor.blobs import Digest

    tracker = secrets["tracker"]
    module = pipes(STEPS)
    done = cp.run(module.flow, executor="ray", ray_address=ray_cluster, tracker=tracker)
    assert done.ok, {n: s.error for n, s in done.steps.items()}
    assert done.load("total", tracker=tracker) == 3 * (0 + 1 + 2 + 3 + 4)
    # the outputs are in the bucket, written by the Ray workers with the credentials they got
    assert tracker.blobs.exists(Digest.parse(done.steps["total"].outputs["output"]["digest"]))
    listed = boto3.client("s3", endpoint_url=secrets["endpoint"]).list_objects_v2(Bucket=secrets["bucket"])
    assert listed.get("KeyCount", 0) > 0
    # the runs are rows in PostgreSQL (through the URL with the password trust auth ignores)
    plain = secrets["url"].replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as conn:
        ids = {row[0] for row in conn.execute("SELECT id FROM runs")}
    assert {done.run_id, done.steps["table"].run_id, done.steps["total"].run_id} <= ids
    # the step saw the store settings and credentials in its environment; its log masks the secrets
    log = tracker.read_artifact(done.steps["table"].run_id, "logs/step.log").decode()
    assert "secret key *** token ***" in log and "store s3://" in log
    assert secrets["key"] not in log and secrets["token"] not in log

    failed = cp.run(module.failing, executor="ray", ray_address=ray_cluster, tracker=tracker)
    assert failed.steps["leak"].status == "FAILED"
    error = failed.steps["leak"].error or ""
    assert "broken on purpose, key=***" in error and secrets["key"] not in error
    leak_run = tracker.get_run(failed.steps["leak"].run_id)
    assert "Traceback" in (leak_run.error or "") and secrets["key"] not in (leak_run.error or "")

    # no file of the Ray session (worker logs, the runtime_env agent's log) holds a secret
    needles = [secrets[k].encode() for k in ("key", "token", "password")]
    leaked = [str(p) for p in _ray_session_files() if any(n in p.read_bytes() for n in needles)]
    assert leaked == []


def test_the_runtime_env_holds_no_store_setting_or_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.pipelines._ray_env import mask_all, runtime_env, secrets, task_env
    from conveyor.settings import Settings

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example-value")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-example-value")
    settings = Settings.load(tmp_path, env={
        "CONVEYOR_STORE_ARTIFACTS_URL": "s3://bucket/c", "CONVEYOR_STORE_S3_ENDPOINT_URL": "http://127.0.0.1:1",
        "CONVEYOR_STORE_METADATA_URL": "postgresql+psycopg://u:db-password-value@127.0.0.1/x"})
    for remote in (False, True):
        env = runtime_env(settings, remote=remote)
        assert set(env["env_vars"]) == {"CONVEYOR_EXPECTED_VERSION"}
        assert env["working_dir"] == str(tmp_path.resolve())
    sent = task_env(settings)
    assert sent["AWS_SECRET_ACCESS_KEY"] == "secret-example-value"
    assert sent["CONVEYOR_STORE_ARTIFACTS_URL"] == "s3://bucket/c"
    assert sent["CONVEYOR_STORE_S3_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert task_env(settings, remote=True) == {}
    hidden = secrets(settings, sent)
    assert set(hidden) == {"secret-example-value", "session-example-value", "db-password-value"}
    text = "k=secret-example-value t=session-example-value p=db-password-value id=AKIAEXAMPLE"
    assert mask_all(text, [*hidden, None]) == "k=*** t=*** p=*** id=AKIAEXAMPLE"
