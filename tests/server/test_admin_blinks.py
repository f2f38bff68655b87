"""User, token and role administration, and ``/api/v1`` model creation, ride out a
PostgreSQL blink and take effect exactly once.

A TCP proxy in front of the real server is cut when the statement that writes the table is
about to run (``reset``: the transaction rolls back and is retried), or the COMMIT reaches
the server and its answer is swallowed (``lost_ack``: the client cannot know and retries;
a retry that ran again would find "its" user or token and refuse, or find no token left
to revoke and say it is missing). Rows are counted afterwards around the proxy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from conveyor.cli import app
from conveyor.server import Users, create_app
from conveyor.settings import ServerSettings
from conveyor.store import api_tokens, registered_models, roles, users
from conveyor.tracking import Tracker
from fixtures.asgi import SyncClient
from fixtures.proxy import TcpProxy, arm_fault, count_rows, fault_listener, pg_proxy, proxied  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
FAULTS = ["reset", "lost_ack"]


def _count(url: str, table: Any, *where: Any) -> int:
    return count_rows(url, select(func.count()).select_from(table).where(*where))


def _cut(proxy: TcpProxy, fault: str) -> int:
    """How many COMMIT answers the proxy swallowed for one fault."""
    return 1 if fault == "lost_ack" else 0


@pytest.mark.parametrize("fault", FAULTS)
def test_adding_a_user_happens_once(proxied: tuple[TcpProxy, Tracker], postgres_url: str, fault: str) -> None:
    proxy, tracker = proxied
    admin = Users(tracker.store)
    fired = arm_fault(tracker, proxy, "INTO users", fault)
    user = admin.add("ana", password="correct horse battery", admin=True)  # no AlreadyExists from its own retry
    assert fired and proxy.commits_cut == _cut(proxy, fault)
    assert user.name == "ana" and user.is_admin and user.has_password
    assert admin.by_password("ana", "correct horse battery").name == "ana"
    assert _count(postgres_url, users) == 1


@pytest.mark.parametrize("fault", FAULTS)
def test_a_token_is_created_once_and_works(proxied: tuple[TcpProxy, Tracker], postgres_url: str, fault: str) -> None:
    proxy, tracker = proxied
    admin = Users(tracker.store)
    admin.add("ana")
    fired = arm_fault(tracker, proxy, "INTO api_tokens", fault)
    token = admin.create_token("ana", "laptop")
    assert fired and proxy.commits_cut == _cut(proxy, fault)
    assert admin.by_token(token).name == "ana"  # the token handed out is the one stored
    assert [t.name for t in admin.tokens("ana")] == ["laptop"]
    assert _count(postgres_url, api_tokens) == 1


@pytest.mark.parametrize("fault", FAULTS)
def test_revoking_a_token_is_not_reported_missing(
    proxied: tuple[TcpProxy, Tracker], postgres_url: str, fault: str
) -> None:
    proxy, tracker = proxied
    admin = Users(tracker.store)
    admin.add("ana")
    token = admin.create_token("ana", "laptop")
    fired = arm_fault(tracker, proxy, "UPDATE api_tokens", fault)
    admin.revoke_token("ana", "laptop")  # a retry that ran again would find nothing active: NotFound
    assert fired and proxy.commits_cut == _cut(proxy, fault)
    assert admin.by_token(token) is None
    assert _count(postgres_url, api_tokens, api_tokens.c.revoked_at.is_(None)) == 0


@pytest.mark.parametrize("fault", FAULTS)
def test_roles_and_user_changes_ride_out_a_blink(
    proxied: tuple[TcpProxy, Tracker], postgres_url: str, fault: str
) -> None:
    proxy, tracker = proxied
    admin = Users(tracker.store)
    admin.add("bob")
    fired = arm_fault(tracker, proxy, "INTO roles", fault)
    admin.grant("bob", "model", "churn", "edit", by="ana")
    assert fired and proxy.commits_cut == _cut(proxy, fault)
    assert [(r.user, r.resource, r.level) for r in admin.roles()] == [("bob", "churn", "edit")]
    fired = arm_fault(tracker, proxy, "DELETE FROM roles", fault)
    admin.revoke_role("bob", "model", "churn")  # not "no such role" from its own retry
    assert fired and admin.roles() == []
    fired = arm_fault(tracker, proxy, "UPDATE users", fault)
    admin.disable("bob")
    assert fired and not admin.get("bob").active and not admin.any_active()
    assert proxy.commits_cut == 3 * _cut(proxy, fault)
    assert _count(postgres_url, roles) == 0 and _count(postgres_url, users, users.c.disabled_at.is_not(None)) == 1


@contextmanager
def _fault_in_any_engine(proxy: TcpProxy, sql: str, fault: str) -> Iterator[list[str]]:
    """``arm_fault`` for the engines a CLI command opens itself (every engine of this process)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    before, fired = fault_listener(proxy, sql, fault)
    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield fired
    finally:
        event.remove(Engine, "before_cursor_execute", before)


@pytest.mark.parametrize("fault", FAULTS)
def test_cli_users_and_tokens_ride_out_a_blink(
    pg_proxy: tuple[TcpProxy, str], postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    from conveyor.settings import StoreSettings
    from conveyor.store import Store

    proxy, url = pg_proxy
    Store.open(url, create=True, settings=StoreSettings()).close()
    monkeypatch.chdir(tmp_path)
    env = {"CONVEYOR_STORE_METADATA_URL": url, "CONVEYOR_STORE_RETRY_SECONDS": "15",
           "CONVEYOR_STORE_ARTIFACTS_URL": (tmp_path / "artifacts").as_uri()}
    runner = CliRunner()
    with _fault_in_any_engine(proxy, "INTO users", fault) as fired:
        added = runner.invoke(app, ["users", "add", "ana", "--admin"], env=env)
    assert added.exit_code == 0, added.output
    assert fired and proxy.commits_cut == _cut(proxy, fault)
    with _fault_in_any_engine(proxy, "INTO api_tokens", fault) as fired:
        made = runner.invoke(app, ["tokens", "create", "laptop", "--user", "ana", "--json"], env=env)
    assert made.exit_code == 0, made.output
    token = json.loads(made.stdout)["token"]
    with _fault_in_any_engine(proxy, "UPDATE users", fault) as fired:
        disabled = runner.invoke(app, ["users", "disable", "ana"], env=env)
    assert disabled.exit_code == 0 and fired, disabled.output
    with _fault_in_any_engine(proxy, "UPDATE api_tokens", fault) as fired:
        revoked = runner.invoke(app, ["tokens", "revoke", "laptop"], env=env)
    assert revoked.exit_code == 0 and fired, revoked.output
    assert proxy.commits_cut == 4 * _cut(proxy, fault)
    assert _count(postgres_url, users) == 1 and _count(postgres_url, api_tokens) == 1
    assert _count(postgres_url, api_tokens, api_tokens.c.revoked_at.is_(None)) == 0
    store = Store.open(postgres_url)
    try:
        assert Users(store).by_token(token) is None and not Users(store).get("ana").active
    finally:
        store.close()


@pytest.mark.parametrize("fault", FAULTS)
def test_api_v1_model_create_answers_201_once(
    proxied: tuple[TcpProxy, Tracker], postgres_url: str, fault: str
) -> None:
    proxy, tracker = proxied
    admin = Users(tracker.store)
    admin.add("ana")
    token = admin.create_token("ana", "laptop")
    client = SyncClient(create_app(tracker, auth=True, users=admin, server=ServerSettings(default_role="edit")))
    headers = {"authorization": f"Bearer {token}"}
    try:
        fired = arm_fault(tracker, proxy, "INTO registered_models", fault)
        made = client.post("/api/v1/models", json={"name": "blinky", "description": "through a blink"},
                           headers=headers)
        assert made.status_code == 201, made.text  # not 409 from its own retry
        assert fired and proxy.commits_cut == _cut(proxy, fault)
        assert made.json()["name"] == "blinky" and made.json()["description"] == "through a blink"
        again = client.post("/api/v1/models", json={"name": "blinky"}, headers=headers)
        assert again.status_code == 409 and again.json()["error"]["code"] == "ALREADY_EXISTS", again.text
    finally:
        client.close()
    assert _count(postgres_url, registered_models, registered_models.c.name == "blinky") == 1
    assert [(r.user, r.kind, r.resource, r.level) for r in admin.roles()] == [("ana", "model", "blinky", "manage")]
