"""``conveyor server`` as a command: schema check at start, workers, graceful shutdown, bad input."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from fixtures.mlflow_client import init_project, start_server, stop_server
from typer.testing import CliRunner

from conveyor.cli import app


def test_outdated_schema_refuses_to_start_naming_db_upgrade(project: Path) -> None:
    from conveyor.settings import Settings
    from conveyor.store import Store

    url = Settings.load().metadata_url
    (project / ".conveyor").mkdir(exist_ok=True)
    Store.connect(url).upgrade("0001")  # a database made by an older conveyor
    result = CliRunner().invoke(app, ["server", "--port", "0"])
    assert result.exit_code == 4, result.output
    assert "conveyor db upgrade" in result.output and "Traceback" not in result.output


def test_missing_store_refuses_to_start(project: Path) -> None:
    result = CliRunner().invoke(app, ["server"])
    assert result.exit_code == 4 and "conveyor init" in result.output


def test_bad_options_exit_2(project: Path) -> None:
    assert CliRunner().invoke(app, ["server", "--workers", "0"]).exit_code == 2
    assert CliRunner().invoke(app, ["server", "--port", "70000"]).exit_code == 2
    result = CliRunner().invoke(app, ["server", "--log-level", "loud"])
    assert result.exit_code == 2 and "--log-level" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_serves_and_stops_gracefully(tmp_path: Path, workers: int) -> None:
    server = start_server(init_project(tmp_path / "project"), "--workers", str(workers))
    try:
        with httpx.Client(base_url=server.url) as client:
            created = client.post("/api/2.0/mlflow/experiments/create", json={"name": "w"}).json()
            for _ in range(4):  # keep-alive requests, possibly answered by different workers
                got = client.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": created["experiment_id"]})
                assert got.json()["experiment"]["name"] == "w"
            assert "conveyor_server_requests_total" in client.get("/metrics").text
    finally:
        code = stop_server(server)
    # uvicorn drains, runs the shutdown (stores closed), then re-raises SIGTERM to its parent
    assert code in (0, -signal.SIGTERM), server.log.read_text()
    assert "Application shutdown complete" in server.log.read_text()
    lines = [line for line in server.log.read_text().splitlines() if line.startswith("{")]
    assert any('"route":"/api/2.0/mlflow/experiments/get"' in line and '"status":200' in line for line in lines)
