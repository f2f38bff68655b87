"""Roles per experiment and registered model on every MLflow-compatible route and in /api/v1:
a refused request is a 403 that changes nothing (checked in the store), searches show only
what the caller may read, and every write records the authenticated user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Request
from fixtures.asgi import SyncClient
from sqlalchemy import func, select

from conveyor.registry import Registry
from conveyor.server import RolePolicy, Users, create_app
from conveyor.server._app import REGISTRY, TRACKING
from conveyor.server._guard import GUARDS
from conveyor.settings import ServerSettings
from conveyor.store import metrics, params, runs

API = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"


def test_every_mlflow_route_has_a_permission_rule() -> None:
    """A route without one is refused while authentication is on; none may be missing."""
    missing = [path for path, _, handler in TRACKING + REGISTRY if handler not in GUARDS]
    assert missing == []


class Team:
    """A server with an admin, ana and bob, each with a token; ``call(user, method, path, …)``."""

    def __init__(self, tracker: Any, default_role: str) -> None:
        self.tracker = tracker
        self.users = Users(tracker.store)
        self.users.add("admin", admin=True)
        self.users.add("ana")
        self.users.add("bob")
        self.tokens = {name: self.users.create_token(name, "t") for name in ("admin", "ana", "bob")}
        self.client = SyncClient(create_app(tracker, auth=True, users=self.users,
                                            server=ServerSettings(default_role=default_role)))

    def call(self, user: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"authorization": f"Bearer {self.tokens[user]}", **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def ok(self, user: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.call(user, method, path, **kwargs)
        assert response.status_code == 200, (user, path, response.text)
        return dict(response.json())

    def denied(self, user: str, method: str, path: str, **kwargs: Any) -> None:
        response = self.call(user, method, path, **kwargs)
        assert response.status_code == 403, (user, path, response.text)
        assert response.json()["error_code"] == "PERMISSION_DENIED"

    def counts(self) -> tuple[int, int, int]:
        with self.tracker.store.read() as conn:
            return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                         for t in (runs, metrics, params))


@pytest.fixture
def team(tracker: Any) -> Any:
    made = Team(tracker, "read")
    yield made
    made.client.close()


def test_read_only_user_reads_but_cannot_write(team: Team) -> None:
    exp = team.ok("ana", "POST", f"{API}/experiments/create", json={"name": "ana-exp"})["experiment_id"]
    run = team.ok("ana", "POST", f"{API}/runs/create", json={"experiment_id": exp, "user_id": "mallory",
                                                             "tags": [{"key": "mlflow.user", "value": "mallory"}]})
    run_id = run["run"]["info"]["run_id"]
    assert run["run"]["info"]["user_id"] == "ana"  # the authenticated user, not what the client claims
    team.ok("ana", "POST", f"{API}/runs/log-metric", json={"run_id": run_id, "key": "loss", "value": 1.0})
    before = team.counts()
    # bob has the default role (read): every read works ...
    assert team.ok("bob", "GET", f"{API}/experiments/get", params={"experiment_id": exp})["experiment"]["name"] == "ana-exp"
    assert team.ok("bob", "GET", f"{API}/runs/get", params={"run_id": run_id})["run"]["info"]["run_id"] == run_id
    team.ok("bob", "GET", f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"})
    assert [r["info"]["run_id"] for r in team.ok("bob", "POST", f"{API}/runs/search",
                                                 json={"experiment_ids": [exp]})["runs"]] == [run_id]
    # ... and no write does, and none changes anything
    team.denied("bob", "POST", f"{API}/runs/create", json={"experiment_id": exp})
    team.denied("bob", "POST", f"{API}/runs/log-metric", json={"run_id": run_id, "key": "loss", "value": 2.0})
    team.denied("bob", "POST", f"{API}/runs/log-batch", json={"run_id": run_id, "params": [{"key": "a", "value": "1"}]})
    team.denied("bob", "POST", f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "a", "value": "1"})
    team.denied("bob", "POST", f"{API}/runs/set-tag", json={"run_id": run_id, "key": "a", "value": "1"})
    team.denied("bob", "POST", f"{API}/runs/update", json={"run_id": run_id, "status": "FAILED"})
    team.denied("bob", "POST", f"{API}/runs/delete", json={"run_id": run_id})
    team.denied("bob", "POST", f"{API}/experiments/update", json={"experiment_id": exp, "new_name": "mine"})
    team.denied("bob", "POST", f"{API}/experiments/delete", json={"experiment_id": exp})
    assert team.counts() == before
    got = team.tracker.get_run(run_id)
    assert got.status == "RUNNING" and not got.deleted and got.tags.get("a") is None
    assert team.tracker.get_experiment(int(exp)).name == "ana-exp" and not team.tracker.get_experiment(int(exp)).archived
    # a role on the experiment opens writes; manage stays with ana
    team.users.grant("bob", "experiment", exp, "edit", by="ana")
    team.ok("bob", "POST", f"{API}/runs/log-metric", json={"run_id": run_id, "key": "loss", "value": 2.0})
    team.denied("bob", "POST", f"{API}/runs/delete", json={"run_id": run_id})
    team.ok("ana", "POST", f"{API}/runs/delete", json={"run_id": run_id})
    team.ok("admin", "POST", f"{API}/runs/restore", json={"run_id": run_id})


def test_artifacts_follow_the_experiment_role(team: Team) -> None:
    exp = team.ok("ana", "POST", f"{API}/experiments/create", json={"name": "ana-exp"})["experiment_id"]
    run_id = team.ok("ana", "POST", f"{API}/runs/create", json={"experiment_id": exp})["run"]["info"]["run_id"]
    path = f"{ART}/{exp}/{run_id}/artifacts"
    assert team.call("ana", "PUT", f"{path}/model.txt", content=b"weights").status_code == 200
    team.denied("bob", "PUT", f"{path}/evil.txt", content=b"evil")
    assert [a.path for a in team.tracker.list_artifacts(run_id)] == ["model.txt"]
    assert team.call("bob", "GET", f"{path}/model.txt").content == b"weights"  # read by default


def test_default_role_none_hides_other_experiments_and_models(tracker: Any, tmp_path: Path) -> None:
    team = Team(tracker, "none")
    try:
        mine = team.ok("ana", "POST", f"{API}/experiments/create", json={"name": "ana-exp"})["experiment_id"]
        theirs = team.ok("bob", "POST", f"{API}/experiments/create", json={"name": "bob-exp"})["experiment_id"]
        run_id = team.ok("ana", "POST", f"{API}/runs/create", json={"experiment_id": mine})["run"]["info"]["run_id"]
        team.tracker.log_artifacts(run_id, _package(tmp_path), "model")
        team.ok("bob", "POST", f"{API}/runs/create", json={"experiment_id": theirs})
        team.ok("admin", "POST", f"{API}/runs/create", json={})  # the default experiment, made by the admin
        team.denied("ana", "POST", f"{API}/runs/create", json={})  # default role none: not ana's to write
        found = team.ok("ana", "POST", f"{API}/experiments/search", json={"max_results": 100})["experiments"]
        assert [e["name"] for e in found] == ["ana-exp"]
        assert {r["info"]["experiment_id"] for r in team.ok("ana", "POST", f"{API}/runs/search", json={})["runs"]} == {mine}
        team.denied("ana", "GET", f"{API}/experiments/get", params={"experiment_id": theirs})
        team.denied("ana", "GET", f"{API}/experiments/get-by-name", params={"experiment_name": "bob-exp"})
        team.denied("ana", "POST", f"{API}/runs/search", json={"experiment_ids": [theirs]})
        admin = team.ok("admin", "POST", f"{API}/experiments/search", json={"max_results": 100})["experiments"]
        assert sorted(e["name"] for e in admin) == ["Default", "ana-exp", "bob-exp"]
        team.ok("ana", "POST", f"{API}/registered-models/create", json={"name": "ana-model"})
        team.ok("bob", "POST", f"{API}/registered-models/create", json={"name": "bob-model"})
        source = {"source": f"runs:/{run_id}/model"}
        team.denied("bob", "POST", f"{API}/model-versions/create", json={"name": "bob-model", **source})  # ana's run
        team.ok("ana", "POST", f"{API}/model-versions/create", json={"name": "ana-model", **source})
        team.denied("ana", "POST", f"{API}/model-versions/create", json={"name": "bob-model", **source})
        for path, key in (("registered-models/search", "registered_models"), ("model-versions/search", "model_versions")):
            assert [m["name"] for m in team.ok("ana", "GET", f"{API}/{path}")[key]] == ["ana-model"]
            assert team.ok("bob", "GET", f"{API}/{path}")[key] == []
            assert [m["name"] for m in team.ok("admin", "GET", f"{API}/{path}")[key]] == ["ana-model"]
        team.denied("bob", "GET", f"{API}/registered-models/get", params={"name": "ana-model"})
        team.denied("bob", "GET", f"{API}/model-versions/get", params={"name": "ana-model", "version": "1"})
        # /api/v1 gets the same policy: a handler's authorize() asks it
        from conveyor.server import Principal

        v1_policy = _v1_policy(team)
        assert isinstance(v1_policy, RolePolicy)
        ana, admin_p = Principal("ana"), Principal("admin", is_admin=True)
        assert v1_policy.allows(ana, "experiment", mine, "manage")
        assert v1_policy.allows(ana, "experiment", "ana-exp", "manage")  # by name too
        assert not v1_policy.allows(ana, "experiment", theirs, "read")
        assert not v1_policy.allows(ana, "model", "bob-model", "read")
        assert not v1_policy.allows(ana, "server", None, "manage") and v1_policy.allows(admin_p, "server", None, "manage")
        assert not v1_policy.allows(None, "experiment", mine, "read")
    finally:
        team.client.close()


def _v1_policy(team: Team) -> Any:
    from starlette.routing import Mount

    app = team.client.client._transport.app  # type: ignore[attr-defined]
    while not hasattr(app, "routes"):
        app = app.app
    mount = next(r for r in app.routes if isinstance(r, Mount) and r.path == "/api/v1")
    return mount.app.state.policy  # type: ignore[attr-defined]


def _package(folder: Path) -> Path:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import conveyor.models

    X = np.random.default_rng(0).normal(size=(40, 3))
    conveyor.models.save(LogisticRegression().fit(X, X[:, 0] > 0), folder / "pkg", input_example=X[:3])
    return folder / "pkg"


def test_aliases_need_manage_and_their_history_names_the_user(team: Team, tmp_path: Path) -> None:
    exp = team.ok("ana", "POST", f"{API}/experiments/create", json={"name": "ana-exp"})["experiment_id"]
    run_id = team.ok("ana", "POST", f"{API}/runs/create", json={"experiment_id": exp})["run"]["info"]["run_id"]
    team.tracker.log_artifacts(run_id, _package(tmp_path), "model")
    team.ok("ana", "POST", f"{API}/registered-models/create", json={"name": "churn"})
    team.denied("bob", "POST", f"{API}/model-versions/create", json={"name": "churn", "source": f"runs:/{run_id}/model"})
    made = team.ok("ana", "POST", f"{API}/model-versions/create", json={"name": "churn", "source": f"runs:/{run_id}/model"})
    assert made["model_version"]["user_id"] == "ana"
    alias = {"name": "churn", "alias": "champion", "version": "1"}
    team.denied("bob", "POST", f"{API}/registered-models/alias", json=alias)
    assert Registry(team.tracker).get_model("churn").aliases == {}
    team.ok("ana", "POST", f"{API}/registered-models/alias", json=alias)
    team.ok("bob", "GET", f"{API}/registered-models/alias", params={"name": "churn", "alias": "champion"})
    team.denied("bob", "DELETE", f"{API}/registered-models/alias", json={"name": "churn", "alias": "champion"})
    team.ok("admin", "DELETE", f"{API}/registered-models/alias", json={"name": "churn", "alias": "champion"})
    history = Registry(team.tracker).history("churn", alias="champion")
    assert [(e.kind, e.user) for e in history] == [("alias", "ana"), ("alias_deleted", "admin")]
    # registering a run's files needs read on its experiment (bob has it by default) and edit on the model
    team.ok("bob", "POST", f"{API}/registered-models/create", json={"name": "bobs"})
    team.ok("bob", "POST", f"{API}/model-versions/create", json={"name": "bobs", "source": f"runs:/{run_id}/model"})
    team.users.grant("bob", "experiment", exp, "read", by="ana")
    assert team.users.levels_of("bob", "experiment") == {exp: "read"}


def test_api_v1_handlers_get_the_role_policy(team: Team) -> None:
    """A /api/v1 handler that calls authorize() is judged by the same roles (403 in v1's shape)."""
    from conveyor.server.api import _deps

    router = APIRouter()

    @router.post("/probe/{exp}")
    def probe(exp: str, request: Request) -> dict[str, Any]:
        _deps.authorize(request, "experiment", exp, "edit")
        return {"user": _deps.user_name(request), "readable": sorted(_deps.readable(request, "experiment", [exp]))}

    app = team.client.client._transport.app  # type: ignore[attr-defined]
    while not hasattr(app, "routes"):
        app = app.app
    from starlette.routing import Mount

    next(r for r in app.routes if isinstance(r, Mount) and r.path == "/api/v1").app.include_router(router)
    exp = team.ok("ana", "POST", f"{API}/experiments/create", json={"name": "ana-exp"})["experiment_id"]
    assert team.ok("ana", "POST", f"/api/v1/probe/{exp}") == {"user": "ana", "readable": [exp]}
    refused = team.call("bob", "POST", f"/api/v1/probe/{exp}")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
    assert team.ok("admin", "POST", f"/api/v1/probe/{exp}")["user"] == "admin"


def test_api_v1_tracking_records_the_user_and_shows_only_readable_experiments(tracker: Any) -> None:
    """conveyor's own API under roles: a run created through /api/v1 records who signed in
    (not the user the client claims), its creator manages the new experiment, and another
    user with no role sees neither the experiment nor its runs, and cannot write to it."""
    made = Team(tracker, "none")
    try:
        created = made.call("ana", "POST", "/api/v1/runs", json={"experiment": "ana-exp", "user": "mallory"})
        assert created.status_code == 201, created.text
        run = created.json()
        assert run["user"] == "ana"
        batch = made.call("ana", "POST", f"/api/v1/runs/{run['id']}/batch",
                          json={"metrics": [{"key": "m", "value": 1.0, "step": 0, "timestamp": 1}]},
                          headers={"idempotency-key": "k1"})
        assert batch.status_code == 200, batch.text
        assert made.call("ana", "GET", "/api/v1/experiments").json()[-1]["name"] == "ana-exp"
        names = [e["name"] for e in made.call("bob", "GET", "/api/v1/experiments").json()]
        assert "ana-exp" not in names
        search = made.call("bob", "POST", "/api/v1/runs/search", json={})
        assert search.status_code == 200 and search.json()["runs"] == []
        assert len(made.call("admin", "POST", "/api/v1/runs/search", json={}).json()["runs"]) == 1
        before = made.counts()
        refused = made.call("bob", "POST", "/api/v1/runs", json={"experiment": "ana-exp"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
        assert made.call("bob", "GET", f"/api/v1/runs/{run['id']}").status_code == 403
        assert made.counts() == before
    finally:
        made.client.close()
