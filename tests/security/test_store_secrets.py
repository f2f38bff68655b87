"""Secrets stay secret: a database password never reaches the console, an error, a written
conveyor.toml or a log line; the S3 credentials handed to a Ray cluster are never logged."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conveyor.settings import Settings
from conveyor.store import Store, mask_url

SECRET = "hunter2-do-not-print"


def _cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    return subprocess.run([sys.executable, "-m", "conveyor", *args], cwd=cwd, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.postgres
def test_init_records_the_environment_without_the_password(postgres_url: str, tmp_path: Path) -> None:
    with_password = postgres_url.replace("postgres@", f"postgres:{SECRET}@", 1)  # trust auth ignores it
    done = _cli(tmp_path, {"CONVEYOR_STORE_METADATA_URL": with_password}, "init", ".")
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert "***" in done.stdout and "not written" in " ".join(done.stdout.split())
    config = (tmp_path / "conveyor.toml").read_text(encoding="utf-8")
    assert SECRET not in config
    assert tomllib.loads(config)["store"]["metadata_url"] == postgres_url  # what the environment said
    # a later job without the variable uses PostgreSQL too, not a silent local SQLite file
    assert Settings.load(tmp_path, env={}).metadata_url == postgres_url
    assert not (tmp_path / ".conveyor" / "conveyor.db").exists()


def test_an_unreachable_database_error_masks_the_password(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://admin:{SECRET}@127.0.0.1:{port}/db"
    done = _cli(tmp_path, {"CONVEYOR_STORE_METADATA_URL": url, "CONVEYOR_STORE_RETRY_SECONDS": "0.5"},
                "runs", "list")
    assert done.returncode == 4
    assert SECRET not in done.stdout + done.stderr and "admin:***@" in done.stderr
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(Exception) as info:
            from conveyor.settings import StoreSettings

            Store.open(url, settings=StoreSettings(retry_seconds=0.5))
    assert SECRET not in str(info.value) and SECRET not in caplog.text


def test_mask_url_hides_passwords_of_any_scheme() -> None:
    assert mask_url(f"postgresql+psycopg://u:{SECRET}@h:5432/d") == "postgresql+psycopg://u:***@h:5432/d"
    assert SECRET not in mask_url(f"https://u:{SECRET}@example.invalid/x")


def test_credentials_for_ray_are_passed_but_never_described(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.pipelines._ray_env import describe, runtime_env, task_env

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA-TEST-KEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    env = {"CONVEYOR_STORE_ARTIFACTS_URL": "s3://bucket/prefix",
           "CONVEYOR_STORE_METADATA_URL": f"postgresql://u:{SECRET}@db/conveyor"}
    settings = Settings.load(tmp_path, env=env)
    made = runtime_env(settings)
    # Ray writes runtime_env values into its logs: no secret goes there, the task carries them
    assert SECRET not in repr(made) and "AWS_SECRET_ACCESS_KEY" not in made["env_vars"]
    task = task_env(settings)
    assert task["AWS_SECRET_ACCESS_KEY"] == SECRET  # the step gets what the driver uses
    assert "CONVEYOR_STORE_METADATA_URL" not in task  # steps do not need the database
    assert SECRET not in describe(made)
