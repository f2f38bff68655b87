"""Tokens: stored hashed, shown once, required off loopback, revocable while the server runs."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from fixtures.asgi import SyncClient
from fixtures.mlflow_client import Server, init_project, run_mlflow, start_server, stop_server
from typer.testing import CliRunner

from conveyor.cli import app
from conveyor.errors import AlreadyExists, InvalidInput, NotFound
from conveyor.server import TokenStore, create_app

API = "/api/2.0/mlflow"


def test_token_store_keeps_only_hashes(tmp_path: Path) -> None:
    tokens = TokenStore.of(tmp_path)
    token = tokens.create("ci")
    text = (tmp_path / "server-tokens.json").read_text()
    assert token.startswith("cvt_") and len(token) > 40 and token not in text
    assert stat.S_IMODE((tmp_path / "server-tokens.json").stat().st_mode) == 0o600
    assert tokens.check(token) == "ci" and tokens.check(token + "x") is None
    with pytest.raises(AlreadyExists):
        tokens.create("ci")
    with pytest.raises(InvalidInput):
        tokens.create("[bold]x")
    other = TokenStore.of(tmp_path)  # another process (the server) sees the revocation
    assert other.check(token) == "ci"
    tokens.revoke("ci")
    assert other.check(token) is None and not other.any_active()
    with pytest.raises(NotFound):
        tokens.revoke("ci")


def test_requests_need_a_valid_unrevoked_token(tracker: Any, tmp_path: Path) -> None:
    tokens = TokenStore.of(tmp_path)
    good, revoked = tokens.create("ana"), tokens.create("old")
    tokens.revoke("old")
    client = SyncClient(create_app(tracker, tokens=tokens))
    try:
        assert client.get("/health").text == "OK"
        for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": f"Bearer {revoked}"},
                        {"authorization": f"Token {good}"}, {"authorization": "Basic !!!"}):
            response = client.post(f"{API}/experiments/create", json={"name": "x"}, headers=headers)
            assert response.status_code == 401, headers
            assert response.json()["error_code"] == "UNAUTHENTICATED"
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert client.get("/metrics", headers=headers).status_code == 401
        assert [e.name for e in tracker.list_experiments()] == []  # nothing changed
        assert client.post(f"{API}/experiments/create", json={"name": "x"},
                           headers={"authorization": f"Bearer {good}"}).status_code == 200
        basic = base64.b64encode(f"ana:{good}".encode()).decode()
        assert client.get(f"{API}/experiments/get-by-name", params={"experiment_name": "x"},
                          headers={"authorization": f"Basic {basic}"}).status_code == 200
    finally:
        client.close()


def test_cli_tokens_and_refusal_off_loopback(project: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    refused = runner.invoke(app, ["server", "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "conveyor tokens create" in refused.output
    made = runner.invoke(app, ["tokens", "create", "ci", "--json"])
    assert made.exit_code == 0, made.output
    token = json.loads(made.output)["token"]
    listed = json.loads(runner.invoke(app, ["tokens", "list", "--json"]).output)
    assert [(t["name"], t["revoked_at"]) for t in listed] == [("ci", None)] and token not in str(listed)
    assert runner.invoke(app, ["tokens", "create", "bad name"]).exit_code == 2
    assert runner.invoke(app, ["tokens", "revoke", "ci"]).exit_code == 0
    assert runner.invoke(app, ["tokens", "revoke", "ci"]).exit_code == 3


@pytest.mark.slow
def test_mlflow_client_with_tracking_token(mlflow_python: Path, tmp_path: Path) -> None:
    root = init_project(tmp_path / "project")
    token = TokenStore.of(root / ".conveyor").create("ana")
    server: Server = start_server(root)  # tokens exist: required even on 127.0.0.1
    try:
        script = """
            import json, os, mlflow
            try:
                mlflow.create_experiment("guarded")
                print(json.dumps({"ok": True}))
            except mlflow.exceptions.MlflowException as e:
                print(json.dumps({"ok": False, "code": e.error_code}))
        """
        denied = run_mlflow(mlflow_python, server, script, tmp_path)
        assert denied == {"ok": False, "code": "UNAUTHENTICATED"}
        allowed = run_mlflow(mlflow_python, server, script.replace("import json, os, mlflow",
                             f"import json, os\n            os.environ['MLFLOW_TRACKING_TOKEN'] = '{token}'\n"
                             "            import mlflow"), tmp_path)
        assert allowed == {"ok": True}
    finally:
        stop_server(server)
    tracker = server.tracker()
    try:
        assert [e.name for e in tracker.list_experiments()] == ["guarded"]
    finally:
        tracker.close()
