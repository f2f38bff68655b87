"""Every registry, data, pipeline and monitoring endpoint asks the permission policy, with
the kind and resource it touches, before it reads or writes."""

from __future__ import annotations

from typing import Any

import pytest

from fixtures.api_world import World
from fixtures.asgi import SyncClient

DOMAINS = ("/models", "/datasets", "/pipelines", "/monitoring")


class Recording:
    def __init__(self, allow: bool) -> None:
        self.allow = allow
        self.calls: list[tuple[str, str | None, str]] = []

    def allows(self, user: Any, kind: str, resource: str | None, level: str) -> bool:
        self.calls.append((kind, resource, level))
        return self.allow


def _client(world: World, policy: Recording) -> SyncClient:
    from conveyor.server.api import create_api

    return SyncClient(create_api(world.tracker, policy=policy))


def _trigger_id(world: World) -> int:
    """The retraining the world's drift alert triggered."""
    from conveyor.store import MonitoringRepo

    with world.tracker.store.read() as conn:
        return MonitoringRepo().triggers(conn, model="churn-rf")[-1].id


def _url(world: World, path: str) -> tuple[str, dict[str, Any]]:
    values = {
        "name": "iris" if path.startswith("/datasets") else "churn-rf", "version": "2", "alias": "champion",
        "run_id": world.pipeline_run_id, "step": "total", "alert_id": str(world.alert_ids[0]),
        "evaluation_id": world.evaluation_id if path.startswith("/models") else str(world.monitor_evaluation_id),
        "model": "churn-rf", "trigger_id": str(_trigger_id(world)),
    }
    for key, value in values.items():
        path = path.replace("{" + key + "}", value)
    query = {"model": "churn-rf", "monitor": "churn-watch", "a": 1, "b": 2, "at": "2030-01-01"}
    return path, query


def test_every_read_is_refused_by_a_policy_that_refuses(api_world: World) -> None:
    policy = Recording(allow=False)
    client = _client(api_world, policy)
    try:
        paths = client.get("/openapi.json").json()["paths"]
        gets = [p for p, ops in paths.items() if p.startswith(DOMAINS) and "get" in ops]
        assert len(gets) >= 30
        for path in gets:
            url, query = _url(api_world, path)
            listing = path in ("/models", "/datasets", "/pipelines/runs", "/monitoring/evaluations",
                               "/monitoring/alerts", "/monitoring/retrainings")
            if listing:
                query.pop("model")
            policy.calls.clear()
            answer = client.get(url, params=query)
            if listing:  # lists without a model filter leave out what the caller may not read
                assert answer.status_code == 200, (path, answer.text)
                body = answer.json()
                assert all(not v for k, v in body.items() if k != "next_page_token"), (path, body)
                assert policy.calls, path  # it asked, and left out everything
            else:
                assert answer.status_code == 403, (path, answer.status_code, answer.text)
                assert answer.json()["error"]["code"] == "FORBIDDEN"
    finally:
        client.close()


def test_writes_ask_for_edit_or_manage_and_change_nothing_when_refused(api_world: World) -> None:
    policy = Recording(allow=False)
    client = _client(api_world, policy)
    try:
        cases = [
            ("POST", "/models", {"name": "sneaky"}, ("model", None, "edit")),
            ("PATCH", "/models/churn-rf", {"description": "x"}, ("model", "churn-rf", "edit")),
            ("PUT", "/models/churn-rf/aliases/champion", {"version": 1}, ("model", "churn-rf", "manage")),
            ("POST", "/models/churn-rf/aliases/champion/rollback", {}, ("model", "churn-rf", "manage")),
            ("POST", "/models/churn-rf/versions/1/promote", {"force": True, "reason": "x"},
             ("model", "churn-rf", "manage")),
            ("POST", "/models/churn-rf/versions/1/archive", {}, ("model", "churn-rf", "edit")),
        ]
        for method, path, body, expected in cases:
            policy.calls.clear()
            answer = client.request(method, path, json=body)
            assert answer.status_code == 403, (path, answer.text)
            assert policy.calls == [expected]
        answer = client.request("DELETE", "/models/churn-rf/aliases/champion")
        assert answer.status_code == 403
    finally:
        client.close()
    from conveyor.registry import Registry

    registry = Registry(api_world.tracker)
    assert registry.get_model("churn-rf").aliases == {"champion": 2}
    assert registry.get_version("churn-rf", 1).status == "READY"
    assert "sneaky" not in [m.name for m in registry.list_models(include_failed=True)]


@pytest.mark.parametrize("path, expected", [
    ("/models/churn-rf/versions/2", ("model", "churn-rf", "read")),
    ("/datasets/iris/versions/1", ("data", "iris", "read")),
    ("/monitoring/predictions?model=churn-rf", ("model", "churn-rf", "read")),
])
def test_reads_name_their_resource(api_world: World, path: str, expected: tuple[str, str, str]) -> None:
    policy = Recording(allow=True)
    client = _client(api_world, policy)
    try:
        assert client.get(path).status_code == 200
        assert policy.calls == [expected]
    finally:
        client.close()


def test_pipeline_reads_name_the_experiment(api_world: World) -> None:
    policy = Recording(allow=True)
    client = _client(api_world, policy)
    try:
        assert client.get(f"/pipelines/runs/{api_world.pipeline_run_id}").status_code == 200
        experiment = str(api_world.tracker.get_run(api_world.pipeline_run_id).experiment_id)
        assert policy.calls == [("experiment", experiment, "read")]
    finally:
        client.close()


class OnlyModel(Recording):
    """Read access to one registered model and nothing else."""

    def __init__(self, name: str) -> None:
        super().__init__(allow=False)
        self.name = name

    def allows(self, user: Any, kind: str, resource: str | None, level: str) -> bool:
        super().allows(user, kind, resource, level)
        return kind == "model" and resource == self.name and level == "read"


def test_lists_show_only_what_the_caller_may_read(api_world: World) -> None:
    client = _client(api_world, OnlyModel("iris-clf"))
    try:
        assert [m["name"] for m in client.get("/models").json()["models"]] == ["iris-clf"]
        assert client.get("/models/iris-clf/aliases/champion/history").status_code == 200
        assert client.get("/models/churn-rf").status_code == 403
        assert client.get("/monitoring/alerts").json()["alerts"] == []  # churn-rf's
        assert client.get("/datasets").json()["datasets"] == []
    finally:
        client.close()
    client = _client(api_world, OnlyModel("churn-rf"))
    try:
        assert [a["model"] for a in client.get("/monitoring/alerts").json()["alerts"]] == ["churn-rf"]
    finally:
        client.close()
