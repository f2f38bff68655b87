"""Users and tokens: passwords and tokens stored hashed, tokens shown once, credentials required
off loopback or once the project has users; revoked tokens and disabled users refused at once."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from fixtures.asgi import SyncClient
from fixtures.mlflow_client import Server, init_project, run_mlflow, start_server, stop_server
from sqlalchemy import select
from typer.testing import CliRunner

from conveyor.cli import app
from conveyor.errors import AlreadyExists, InvalidInput, NotFound
from conveyor.server import TokenStore, Users, create_app
from conveyor.store import api_tokens, users as users_table

API = "/api/2.0/mlflow"


def _basic(user: str, secret: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_users_keep_only_hashes_and_refuse_revoked_and_disabled(tracker: Any) -> None:
    users = Users(tracker.store)
    users.add("ana", password="correct horse battery")
    token = users.create_token("ana", "laptop")
    with tracker.store.read() as conn:
        stored = conn.execute(select(users_table.c.password_hash)).scalar_one()
        digests = list(conn.execute(select(api_tokens.c.sha256)).scalars())
    assert stored.startswith("scrypt$32768$8$3$") and "correct horse" not in stored
    assert token.startswith("cvt_") and len(token) > 40 and token not in digests and len(digests[0]) == 64
    assert users.by_password("ana", "correct horse battery").name == "ana"
    assert users.by_password("ana", "correct horse batterY") is None and users.by_password("bob", "x" * 9) is None
    assert users.by_token(token).name == "ana" and users.by_token(token + "x") is None
    with pytest.raises(AlreadyExists):
        users.create_token("ana", "laptop")
    with pytest.raises(AlreadyExists):
        users.add("ana")
    with pytest.raises(InvalidInput, match="password"):
        users.add("bob", password="short")
    with pytest.raises(InvalidInput, match="user name"):
        users.add("[bold]x")
    with pytest.raises(NotFound):
        users.create_token("nobody", "t")
    other = Users(tracker.store)  # another process (the server) sees each change on its next check
    users.disable("ana")
    assert other.by_token(token) is None and other.by_password("ana", "correct horse battery") is None
    assert not other.any_active()
    users.enable("ana")
    assert other.by_token(token).name == "ana"
    users.revoke_token("ana", "laptop")
    assert other.by_token(token) is None
    with pytest.raises(NotFound):
        users.revoke_token("ana", "laptop")
    users.set_password("ana", "another good one")
    assert other.by_password("ana", "correct horse battery") is None  # the remembered check ends with the change


def test_ui_sessions_expire_and_sign_out_revokes_only_them(tracker: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.entities import now_ms
    from conveyor.server._auth import Sessions
    from conveyor.server._users import SESSION_PREFIX, session_expiry

    users = Users(tracker.store)
    users.add("ana", password="correct horse battery")
    users.add("bob")  # no password
    users.add("cy", password="another good one")
    users.disable("cy")
    api_token = users.create_token("ana", "laptop")
    sessions = Sessions(users, hours=2)
    before = now_ms()
    session = sessions.sign_in("ana", "correct horse battery")
    after = now_ms()
    assert session is not None and session.startswith("cvt_")
    principal = users.by_token(session)
    assert principal is not None and principal.name == "ana" and principal.token.startswith(SESSION_PREFIX)
    assert before + 2 * 3_600_000 <= session_expiry(principal.token) <= after + 2 * 3_600_000
    assert sessions.check_token(session) == "ana" and sessions.check_token(api_token) == "ana"
    # wrong password, unknown user, user without password, disabled user: None, nothing issued
    for user, password in [("ana", "correct horse batterY"), ("nobody", "correct horse battery"),
                           ("bob", "correct horse battery"), ("cy", "another good one")]:
        assert sessions.sign_in(user, password) is None, user
    assert [t.name.startswith(SESSION_PREFIX) for t in users.tokens()] == [False, True]
    # and each of them costs an scrypt check, so the time taken does not tell which names exist
    calls: list[int] = []
    scrypt = hashlib.scrypt

    def counted(*args: Any, **kwargs: Any) -> bytes:
        calls.append(1)
        return scrypt(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    for user, password in [("ana", "yet another wrong"), ("nobody", "x" * 12), ("bob", "y" * 12), ("cy", "z" * 12)]:
        calls.clear()
        assert sessions.sign_in(user, password) is None and len(calls) == 1, user
    monkeypatch.undo()
    # an expired session is refused by every check; a new sign-in revokes the user's expired ones
    expired = users.create_session("ana", hours=-0.001)
    assert users.by_token(expired) is None and sessions.check_token(expired) is None
    assert users.by_token(api_token) is not None and users.by_token(session) is not None
    sessions.sign_in("ana", "correct horse battery")
    expired_name = next(t for t in users.tokens("ana") if t.name.startswith(SESSION_PREFIX)
                        and session_expiry(t.name) < now_ms())
    assert expired_name.revoked_at is not None
    # signing out revokes that session token only; an API token cannot be "signed out"
    assert sessions.sign_out(session) is True and users.by_token(session) is None
    assert sessions.sign_out(session) is False
    assert sessions.sign_out(api_token) is False and users.by_token(api_token).name == "ana"
    # the session prefix is reserved: no API token can pose as (or be cut short as) a session
    with pytest.raises(InvalidInput, match="reserved"):
        users.create_token("ana", SESSION_PREFIX + "99999999999999-x")
    # a password is never stored in a token name or anywhere in the token table
    with tracker.store.read() as conn:
        names = " ".join(conn.execute(select(api_tokens.c.name)).scalars())
    assert "horse" not in names


def test_session_hours_setting(tmp_path: Path) -> None:
    from conveyor.errors import ConfigError
    from conveyor.settings import Settings

    assert Settings.load(tmp_path, env={}).server.session_hours == 12
    (tmp_path / "conveyor.toml").write_text("[server]\nsession_hours = 0.5\n")
    assert Settings.load(tmp_path, env={}).server.session_hours == 0.5
    assert Settings.load(tmp_path, env={"CONVEYOR_SERVER_SESSION_HOURS": "24"}).server.session_hours == 24
    with pytest.raises(ConfigError, match="CONVEYOR_SERVER_SESSION_HOURS.*greater than 0"):
        Settings.load(tmp_path, env={"CONVEYOR_SERVER_SESSION_HOURS": "0"})


def test_legacy_token_file_is_imported_once(tracker: Any, tmp_path: Path) -> None:
    legacy = TokenStore.of(tmp_path)
    kept, revoked = legacy.create("ci"), legacy.create("old")
    legacy.revoke("old")
    users = Users(tracker.store)
    assert users.import_legacy(tmp_path) == ["ci", "old"]
    assert not (tmp_path / "server-tokens.json").exists() and (tmp_path / "server-tokens.json.imported").exists()
    assert users.by_token(kept) == users.by_token(kept) and users.by_token(kept).is_admin  # they could do everything
    assert users.by_token(revoked) is None
    assert users.import_legacy(tmp_path) == []


def test_requests_need_valid_credentials_and_nothing_changes_without(tracker: Any) -> None:
    users = Users(tracker.store)
    users.add("ana", password="correct horse battery")
    users.add("bob")
    good = users.create_token("ana", "laptop")
    revoked = users.create_token("ana", "old")
    users.revoke_token("ana", "old")
    bobs = users.create_token("bob", "laptop")
    users.disable("bob")
    client = SyncClient(create_app(tracker, auth=True, users=users))
    try:
        assert client.get("/health").text == "OK"
        refused = [{}, _bearer("nope"), _bearer(revoked), _bearer(bobs), {"authorization": f"Token {good}"},
                   {"authorization": "Basic !!!"}, _basic("ana", "wrong password"), _basic("bob", bobs),
                   _basic("bob", good),  # another user's token
                   _basic("ana", "")]
        for headers in refused:
            response = client.post(f"{API}/experiments/create", json={"name": "x"}, headers=headers)
            assert response.status_code == 401, headers
            assert response.json()["error_code"] == "UNAUTHENTICATED"
            assert "Bearer" in response.headers["www-authenticate"]
            assert client.get("/metrics", headers=headers).status_code == 401
            v1 = client.get("/api/v1/info", headers=headers)
            assert v1.status_code == 401 and v1.json()["error"]["code"] == "UNAUTHENTICATED"
        assert [e.name for e in tracker.list_experiments()] == []  # nothing changed
        assert client.post(f"{API}/experiments/create", json={"name": "x"}, headers=_bearer(good)).status_code == 200
        for headers in (_basic("ana", good), _basic("ana", "correct horse battery")):
            got = client.get(f"{API}/experiments/get-by-name", params={"experiment_name": "x"}, headers=headers)
            assert got.status_code == 200, got.text
            assert client.get("/api/v1/info", headers=headers).json()["user"] == "ana"
    finally:
        client.close()


def test_cli_users_tokens_roles_and_refusal_off_loopback(project: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    refused = runner.invoke(app, ["server", "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "conveyor users add" in refused.output
    proxied = runner.invoke(app, ["server"], env={"CONVEYOR_SERVER_ALLOWED_HOSTS": "mlflow.example.com"})
    assert proxied.exit_code == 2 and "allowed_hosts" in proxied.output  # behind a proxy: exposed as well
    added = runner.invoke(app, ["users", "add", "ana", "--admin", "--password-stdin"], input="correct horse battery\n")
    assert added.exit_code == 0, added.output
    assert runner.invoke(app, ["users", "add", "bob"]).exit_code == 0
    assert runner.invoke(app, ["users", "add", "bob"]).exit_code != 0
    listed = json.loads(runner.invoke(app, ["users", "list", "--json"]).output)
    assert [(u["name"], u["admin"], u["password"], u["disabled_at"]) for u in listed] == [
        ("ana", True, True, None), ("bob", False, False, None)]
    made = runner.invoke(app, ["tokens", "create", "laptop", "--user", "bob", "--json"])
    assert made.exit_code == 0, made.output
    token = json.loads(made.output)["token"]
    tokens = json.loads(runner.invoke(app, ["tokens", "list", "--json"]).output)
    assert [(t["user"], t["name"], t["revoked_at"]) for t in tokens] == [("bob", "laptop", None)]
    assert token not in str(tokens)
    assert runner.invoke(app, ["tokens", "create", "x", "--user", "nobody"]).exit_code == 3
    assert runner.invoke(app, ["tokens", "create", "bad name", "--user", "bob"]).exit_code == 2
    # roles: by experiment name or id, kept by id
    with __import__("conveyor.cli._common", fromlist=["tracker"]).tracker(create=True) as t:
        exp_id = t.create_experiment("churn").id
    assert runner.invoke(app, ["roles", "grant", "bob", "edit", "--experiment", "churn"]).exit_code == 0
    assert runner.invoke(app, ["roles", "grant", "bob", "manage", "--model", "churn"]).exit_code == 0
    assert runner.invoke(app, ["roles", "grant", "bob", "owner", "--model", "churn"]).exit_code == 2
    assert runner.invoke(app, ["roles", "grant", "bob", "read"]).exit_code == 2
    roles = json.loads(runner.invoke(app, ["roles", "list", "--user", "bob", "--json"]).output)
    assert [(r["kind"], r["resource"], r["role"]) for r in roles] == [
        ("experiment", str(exp_id), "edit"), ("model", "churn", "manage")]
    assert runner.invoke(app, ["roles", "revoke", "bob", "--model", "churn"]).exit_code == 0
    assert runner.invoke(app, ["roles", "revoke", "bob", "--model", "churn"]).exit_code == 3
    assert runner.invoke(app, ["users", "disable", "bob"]).exit_code == 0
    assert json.loads(runner.invoke(app, ["users", "list", "--json"]).output)[1]["disabled_at"] is not None
    assert runner.invoke(app, ["tokens", "revoke", "laptop"]).exit_code == 0
    assert runner.invoke(app, ["tokens", "revoke", "laptop"]).exit_code == 3
    assert runner.invoke(app, ["users", "disable", "nobody"]).exit_code == 3


@pytest.mark.slow
def test_mlflow_client_auth_variables(mlflow_python: Path, tmp_path: Path) -> None:
    root = init_project(tmp_path / "project")
    tracker = Server("", root, None, root / "x").tracker()  # type: ignore[arg-type]
    try:
        users = Users(tracker.store)
        users.add("ana", password="correct horse battery")
        token = users.create_token("ana", "laptop")
    finally:
        tracker.close()
    server: Server = start_server(root)  # the project has users: required even on 127.0.0.1
    try:
        script = """
            import json, os, mlflow
            try:
                mlflow.set_experiment(os.environ.get("EXP", "guarded"))
                with mlflow.start_run() as run:
                    mlflow.log_metric("loss", 0.5)
                print(json.dumps({"ok": True, "user": run.info.user_id}))
            except mlflow.exceptions.MlflowException as e:
                print(json.dumps({"ok": False, "code": e.error_code}))
        """
        denied = run_mlflow(mlflow_python, server, script, tmp_path)
        assert denied == {"ok": False, "code": "UNAUTHENTICATED"}

        def with_env(**env: str) -> str:
            lines = "".join(f"\n            os.environ[{k!r}] = {v!r}" for k, v in env.items())
            return script.replace("import json, os, mlflow", f"import json, os{lines}\n            import mlflow")

        wrong = run_mlflow(mlflow_python, server, with_env(MLFLOW_TRACKING_TOKEN=token[:-2] + "xx"), tmp_path)
        assert wrong == {"ok": False, "code": "UNAUTHENTICATED"}
        by_token = run_mlflow(mlflow_python, server, with_env(MLFLOW_TRACKING_TOKEN=token, USER="mallory"), tmp_path)
        assert by_token == {"ok": True, "user": "ana"}  # the authenticated user, not the client's $USER
        by_password = run_mlflow(mlflow_python, server, with_env(
            MLFLOW_TRACKING_USERNAME="ana", MLFLOW_TRACKING_PASSWORD="correct horse battery", EXP="basic"), tmp_path)
        assert by_password == {"ok": True, "user": "ana"}
        user_and_token = run_mlflow(mlflow_python, server, with_env(
            MLFLOW_TRACKING_USERNAME="ana", MLFLOW_TRACKING_PASSWORD=token, EXP="basic"), tmp_path)
        assert user_and_token == {"ok": True, "user": "ana"}
    finally:
        stop_server(server)
    tracker = server.tracker()
    try:
        assert sorted(e.name for e in tracker.list_experiments()) == ["basic", "guarded"]
        runs = tracker.search_runs(["guarded", "basic"], output="runs")
        assert len(runs) == 3 and {r.user for r in runs} == {"ana"}
    finally:
        tracker.close()
