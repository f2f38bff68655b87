"""The server's MLflow REST API in process (Starlette's test client) over SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fixtures.asgi import SyncClient, server_client

API = "/api/2.0/mlflow"


@pytest.fixture
def client(tracker: Any) -> Iterator[SyncClient]:
    test_client = server_client(tracker)
    yield test_client
    test_client.close()


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == code, body
    assert "Traceback" not in body["message"]
    return str(body["message"])


def test_health_version_metrics(client: SyncClient) -> None:
    from conveyor import __version__

    assert client.get("/health").text == "OK"
    assert client.get("/version").text == __version__
    client.get(f"{API}/experiments/get-by-name", params={"experiment_name": "nope"})
    text = client.get("/metrics").text
    assert 'conveyor_server_requests_total{method="GET",route="/api/2.0/mlflow/experiments/get-by-name",status="404"} 1.0' in text


@pytest.mark.parametrize("prefix", ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"])
def test_experiment_lifecycle(client: SyncClient, tracker: Any, prefix: str) -> None:
    exp_id = ok(client.post(f"{prefix}/experiments/create", json={"name": "churn", "tags": [{"key": "team", "value": "a"}]}))["experiment_id"]
    got = ok(client.get(f"{prefix}/experiments/get", params={"experiment_id": exp_id}))["experiment"]
    assert got["name"] == "churn" and got["lifecycle_stage"] == "active" and got["tags"] == [{"key": "team", "value": "a"}]
    assert ok(client.get(f"{prefix}/experiments/get-by-name", params={"experiment_name": "churn"}))["experiment"]["experiment_id"] == exp_id
    error(client.post(f"{prefix}/experiments/create", json={"name": "churn"}), 400, "RESOURCE_ALREADY_EXISTS")
    ok(client.post(f"{prefix}/experiments/create", json={"name": "fraud"}))
    found = ok(client.post(f"{prefix}/experiments/search", json={"filter": "name LIKE 'ch%'"}))["experiments"]
    assert [e["name"] for e in found] == ["churn"]
    found = ok(client.post(f"{prefix}/experiments/search", json={"filter": "tags.team = 'a'"}))["experiments"]
    assert [e["name"] for e in found] == ["churn"]
    ok(client.post(f"{prefix}/experiments/update", json={"experiment_id": exp_id, "new_name": "churn-v2"}))
    assert tracker.get_experiment(int(exp_id)).name == "churn-v2"
    ok(client.post(f"{prefix}/experiments/delete", json={"experiment_id": exp_id}))
    assert tracker.get_experiment(int(exp_id)).archived
    names = [e["name"] for e in ok(client.get(f"{prefix}/experiments/search", params={"view_type": "DELETED_ONLY"}))["experiments"]]
    assert names == ["churn-v2"]
    ok(client.post(f"{prefix}/experiments/restore", json={"experiment_id": exp_id}))
    assert not tracker.get_experiment(int(exp_id)).archived
    page = ok(client.post(f"{prefix}/experiments/search", json={"max_results": 1, "order_by": ["name ASC"]}))
    second = ok(client.post(f"{prefix}/experiments/search", json={"max_results": 1, "order_by": ["name ASC"],
                                                                  "page_token": page["next_page_token"]}))
    assert [page["experiments"][0]["name"], second["experiments"][0]["name"]] == ["churn-v2", "fraud"]


def test_run_logged_over_rest_is_a_conveyor_run(client: SyncClient, tracker: Any) -> None:
    exp_id = ok(client.post(f"{API}/experiments/create", json={"name": "rest"}))["experiment_id"]
    run = ok(client.post(f"{API}/runs/create", json={"experiment_id": exp_id, "run_name": "first", "start_time": 1000,
                                                      "tags": [{"key": "mlflow.user", "value": "ana"}]}))["run"]
    run_id = run["info"]["run_id"]
    assert run["info"]["status"] == "RUNNING" and run["info"]["artifact_uri"] == f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts"
    ok(client.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "depth", "value": "5"}))
    for step, value in enumerate([0.9, 0.5, 0.25]):
        ok(client.post(f"{API}/runs/log-metric", json={"run_id": run_id, "key": "loss", "value": value, "timestamp": 5000 + step, "step": step}))
    ok(client.post(f"{API}/runs/log-metric", json={"run_id": run_id, "key": "gap", "value": "NaN", "timestamp": 1}))
    ok(client.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "stage", "value": "dev"}))
    ok(client.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": [{"key": "acc", "value": 0.8, "timestamp": 7, "step": 2}],
                                                  "params": [{"key": "lr", "value": "0.1"}], "tags": [{"key": "x", "value": "y"}]}))
    ok(client.post(f"{API}/runs/log-inputs", json={"run_id": run_id, "datasets": [{"dataset": {"name": "train", "digest": "abc"}}]}))
    ok(client.post(f"{API}/runs/delete-tag", json={"run_id": run_id, "key": "x"}))
    ok(client.post(f"{API}/runs/update", json={"run_id": run_id, "status": "FINISHED", "end_time": 9000}))

    mine = tracker.get_run(run_id)
    assert mine.experiment == "rest" and mine.name == "first" and mine.user == "ana" and mine.status == "FINISHED"
    assert mine.params == {"depth": "5", "lr": "0.1"} and mine.metrics["loss"] == 0.25 and mine.metrics["acc"] == 0.8
    assert mine.tags["stage"] == "dev" and "x" not in mine.tags and mine.tags["mlflow.dataset.train"] == "abc"
    assert [(m.step, m.value) for m in tracker.metric_history(run_id, "loss")] == [(0, 0.9), (1, 0.5), (2, 0.25)]
    history = ok(client.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}))["metrics"]
    assert [(m["step"], m["value"], m["timestamp"]) for m in history] == [(0, 0.9, 5000), (1, 0.5, 5001), (2, 0.25, 5002)]
    got = ok(client.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    metrics = {m["key"]: (m["value"], m["step"]) for m in got["data"]["metrics"]}
    assert metrics == {"loss": (0.25, 2), "acc": (0.8, 2), "gap": ("NaN", 0)}
    assert got["info"]["end_time"] == 9000

    # and the other way round: a run conveyor logged is visible to mlflow's API
    other = tracker.create_run("rest", name="native", capture=False)
    tracker.log_metric(other.id, "loss", 0.1)
    tracker.end_run(other.id)
    found = ok(client.post(f"{API}/runs/search", json={"experiment_ids": [exp_id], "filter": "metrics.loss < 0.3",
                                                       "order_by": ["metrics.loss ASC"]}))["runs"]
    assert [r["info"]["run_name"] for r in found] == ["native", "first"]
    page = ok(client.post(f"{API}/runs/search", json={"experiment_ids": [exp_id], "max_results": 1, "order_by": ["metrics.loss DESC"]}))
    rest = ok(client.post(f"{API}/runs/search", json={"experiment_ids": [exp_id], "max_results": 1, "order_by": ["metrics.loss DESC"],
                                                      "page_token": page["next_page_token"]}))
    assert [page["runs"][0]["info"]["run_name"], rest["runs"][0]["info"]["run_name"]] == ["first", "native"]
    assert "next_page_token" not in rest

    ok(client.post(f"{API}/runs/delete", json={"run_id": run_id}))
    assert tracker.get_run(run_id).deleted
    error(client.post(f"{API}/runs/log-metric", json={"run_id": run_id, "key": "k", "value": 1, "timestamp": 1}), 409, "INVALID_STATE")
    ok(client.post(f"{API}/runs/restore", json={"run_id": run_id}))
    assert not tracker.get_run(run_id).deleted


def test_default_experiment_zero(client: SyncClient, tracker: Any) -> None:
    run = ok(client.post(f"{API}/runs/create", json={"experiment_id": "0"}))["run"]
    assert tracker.get_run(run["info"]["run_id"]).experiment == "Default"
    assert ok(client.get(f"{API}/experiments/get", params={"experiment_id": "0"}))["experiment"]["name"] == "Default"


BAD_REQUESTS = [
    ("post", "/experiments/create", {}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/experiments/create", {"name": 5}, 400, "INVALID_PARAMETER_VALUE"),
    ("get", "/experiments/get", {"experiment_id": "abc"}, 400, "INVALID_PARAMETER_VALUE"),
    ("get", "/experiments/get", {"experiment_id": "999"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("post", "/experiments/search", {"filter": "name ="}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/experiments/search", {"max_results": 0}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/experiments/search", {"view_type": "SOME"}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/runs/create", {"experiment_id": "424242"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("post", "/runs/create", {"experiment_id": "0", "tags": "nope"}, 400, "INVALID_PARAMETER_VALUE"),
    ("get", "/runs/get", {"run_id": "deadbeef"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("get", "/runs/get", {}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/runs/search", {"filter": "metrics.acc >>> 1"}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/runs/search", {"order_by": ["nonsense field"]}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/runs/search", {"page_token": "not-a-token"}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/runs/search", {"max_results": "many"}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/runs/search", {"experiment_ids": [{"x": 1}]}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/runs/log-metric", {"run_id": "RUN", "key": "k", "value": "high", "timestamp": 1}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/runs/log-metric", {"run_id": "RUN", "key": "k", "value": 1, "step": 1.5}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/runs/log-metric", {"run_id": "RUN", "value": 1}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/runs/log-parameter", {"run_id": "RUN", "key": "p", "value": "2"}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/runs/log-batch", {"run_id": "RUN", "metrics": [{"key": "m", "value": 1}] * 1001}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/runs/log-batch", {"run_id": "RUN", "params": [{"value": "v"}]}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/runs/update", {"run_id": "RUN", "status": "DONE"}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/runs/delete-tag", {"run_id": "RUN", "key": "absent"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("get", "/metrics/get-history", {"run_id": "RUN"}, 400, "INVALID_PARAMETER_VALUE"),
    ("get", "/metrics/get-history", {"run_id": "nope", "metric_key": "k"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("get", "/registered-models/get", {}, 400, "INVALID_PARAMETER_VALUE"),
    ("get", "/registered-models/get", {"name": "absent"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("post", "/registered-models/create", {"name": "a/b"}, 400, "INVALID_PARAMETER_VALUE"),
    ("get", "/registered-models/search", {"filter": "owner = 'x'"}, 400, "INVALID_PARAMETER_VALUE"),
    ("get", "/registered-models/search", {"max_results": "5000"}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/model-versions/create", {"name": "m", "source": "s3://bucket/model"}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/model-versions/create", {"name": "m", "source": "runs:/RUN/../../etc"}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/model-versions/create", {"name": "m", "source": "mlflow-artifacts:/1/RUN/artifacts/%2e%2e/x"}, 400,
     "INVALID_PARAMETER_VALUE"),
    ("post", "/model-versions/create", {"name": "m"}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/model-versions/create", {"name": "absent", "source": "runs:/RUN/model"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("get", "/model-versions/get", {"name": "m", "version": "abc"}, 400, "INVALID_PARAMETER_VALUE"),
    ("get", "/model-versions/get", {"name": "m", "version": "0"}, 400, "INVALID_PARAMETER_VALUE"),
    ("get", "/registered-models/alias", {"name": "absent", "alias": "champion"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("get", "/model-versions/search", {"filter": "metrics.x > 1"}, 400, "INVALID_PARAMETER_VALUE"),
    ("get", "/model-versions/search", {"filter": "name = "}, 400, "INVALID_PARAMETER_VALUE"),
    ("post", "/registered-models/alias", {"name": "absent", "alias": "champion", "version": "1"}, 404,
     "RESOURCE_DOES_NOT_EXIST"),
]


@pytest.mark.parametrize(("method", "path", "fields", "status", "code"), BAD_REQUESTS,
                         ids=[f"{p}-{i}" for i, (_, p, *_) in enumerate(BAD_REQUESTS)])
def test_client_mistakes_are_4xx_in_one_shape(client: SyncClient, method: str, path: str, fields: dict[str, Any],
                                              status: int, code: str) -> None:
    run_id = ok(client.post(f"{API}/runs/create", json={"experiment_id": "0"}))["run"]["info"]["run_id"]
    ok(client.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "p", "value": "1"}))
    fields = {k: (run_id if v == "RUN" else v) for k, v in fields.items()}
    if method == "get":
        response = client.get(API + path, params=fields)
    else:
        response = client.post(API + path, json=fields)
    error(response, status, code)


def test_malformed_bodies_unknown_routes_and_methods(client: SyncClient) -> None:
    error(client.post(f"{API}/runs/create", content=b"{not json"), 400, "BAD_REQUEST")
    error(client.post(f"{API}/runs/create", content=b"[1, 2]"), 400, "BAD_REQUEST")
    error(client.post(f"{API}/runs/create", content=b"\xff\xfe"), 400, "BAD_REQUEST")
    error(client.get(f"{API}/runs/create"), 405, "METHOD_NOT_ALLOWED")
    error(client.get(f"{API}/no/such/thing"), 404, "ENDPOINT_NOT_FOUND")
    error(client.post(f"{API}/runs/create", content=b"x" * 10, headers={"content-length": "99999999999"}), 413,
          "REQUEST_LIMIT_EXCEEDED")


def test_a_server_bug_is_a_json_500_without_traceback(tracker: Any) -> None:
    import httpx

    from conveyor.server import create_app

    class Broken:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("secret internal detail")

    app = create_app(tracker)
    app.state.tracker = Broken()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    client = SyncClient(app)
    client.client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")
    try:
        response = client.get(f"{API}/runs/get", params={"run_id": "x"})
        assert response.status_code == 500
        assert response.json() == {"error_code": "INTERNAL_ERROR", "message": "internal error; the server log has the details"}
        assert "secret" not in response.text and "Traceback" not in response.text
    finally:
        client.close()
