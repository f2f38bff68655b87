"""Remote mode end to end: a training script and the CLI in a folder that names only the
server (no database URL, no S3 keys in the environment), against a `conveyor server`
subprocess over its own project's stores."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fixtures.mlflow_client import SRC, clean_env, init_project, start_server, stop_server

SCRIPT = """
import numpy as np
import conveyor

conveyor.set_experiment("remote-cli")
with conveyor.start_run(name="fit") as run:
    conveyor.log_params({"alpha": 0.5, "model": "ridge"})
    for step in range(200):
        conveyor.log_metric("loss", 1.0 / (step + 1), step=step)
    conveyor.log_metrics({"acc": 0.91, "f1": 0.88})
    conveyor.set_tag("phase", "train")
    conveyor.log_text("hello remote", "notes/readme.txt")
    conveyor.log_dict({"w": np.arange(3).tolist()}, "weights.json")
    conveyor.log_artifacts("model", "model")
print(run.id)
"""


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    started = start_server(init_project(tmp_path / "server-project"))
    yield started
    stop_server(started)


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in clean_env().items() if not k.startswith("AWS_")}
    env.update(PYTHONPATH=str(SRC), CONVEYOR_SERVER_URL=url)
    return env


def _cli(client: Path, url: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "conveyor", *args], cwd=client, env=_env(url),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_script_and_cli_work_through_the_server_alone(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client = tmp_path / "laptop"
    (client / "model" / "sub").mkdir(parents=True)
    (client / "model" / "weights.bin").write_bytes(bytes(range(256)) * 40)
    (client / "model" / "sub" / "config.json").write_text('{"layers": 3}')
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT)], cwd=client, env=_env(server.url),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip().splitlines()[-1]

    runs = json.loads(_cli(client, server.url, "runs", "list", "--json", "-f", "metrics.acc > 0.9"))
    assert [r["id"] for r in runs] == [run_id]
    assert runs[0]["params"] == {"alpha": "0.5", "model": "ridge"} and runs[0]["status"] == "FINISHED"
    shown = json.loads(_cli(client, server.url, "runs", "show", run_id[:10], "--json"))
    assert shown["metrics"]["loss"] == pytest.approx(1 / 200) and shown["tags"]["phase"] == "train"
    files = json.loads(_cli(client, server.url, "artifacts", "list", run_id, "--json"))
    assert sorted(f["path"] for f in files) == ["model/sub/config.json", "model/weights.bin",
                                                 "notes/readme.txt", "weights.json"]
    _cli(client, server.url, "artifacts", "get", run_id, "model", "--dest", "restored")
    assert (client / "restored" / "weights.bin").read_bytes() == bytes(range(256)) * 40
    assert (client / "restored" / "sub" / "config.json").read_text() == '{"layers": 3}'
    _cli(client, server.url, "artifacts", "get", run_id, "notes/readme.txt", "--dest", "readme.txt")
    assert (client / "readme.txt").read_text() == "hello remote"
    experiments = json.loads(_cli(client, server.url, "experiments", "list", "--json"))
    assert {"name": "remote-cli", "runs": 1} in [{"name": e["name"], "runs": e["runs"]} for e in experiments]
    # the laptop holds no store: everything went to the server's project
    assert not (client / ".conveyor" / "conveyor.db").exists()
    assert not (client / ".conveyor" / "artifacts").exists()
    server_tracker = server.tracker()
    try:
        assert server_tracker.get_run(run_id).metrics["acc"] == pytest.approx(0.91)
        assert len(server_tracker.metric_history(run_id, "loss")) == 200
    finally:
        server_tracker.close()


def test_a_wrong_or_absent_server_is_a_clear_error(tmp_path: Path) -> None:
    from fixtures.remote import free_port

    done = subprocess.run([sys.executable, "-m", "conveyor", "runs", "list"], cwd=tmp_path,
                          env=_env("ftp://nowhere"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "CONVEYOR_SERVER_URL" in done.stderr and "http://" in done.stderr
    away = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run([sys.executable, "-m", "conveyor", "runs", "list"], cwd=tmp_path,
                          env={**_env(away), "CONVEYOR_SERVER_RETRY_SECONDS": "0.5"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and f"conveyor server {away} is unreachable" in done.stdout + done.stderr
    assert not (tmp_path / ".conveyor" / "conveyor.db").exists()
