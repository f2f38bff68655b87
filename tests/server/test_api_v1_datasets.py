"""``/api/v1/datasets``: versions of two table data sets (iris: more rows; churn: shifted
distributions) with their profiles, diffs, validation anomalies and lineage."""

from __future__ import annotations

from typing import Any

import pytest

from fixtures.api_world import World, api, error  # noqa: F401  (api: fixture)
from fixtures.asgi import SyncClient


def test_list_and_versions(api: SyncClient) -> None:
    latest = api.get("/api/v1/datasets").json()["datasets"]
    assert [(d["name"], d["version"], d["kind"]) for d in latest] == [("churn", 2, "table"), ("iris", 2, "table")]
    assert "profile" not in latest[0]
    page1 = api.get("/api/v1/datasets", params={"max_results": 1}).json()
    page2 = api.get("/api/v1/datasets", params={"max_results": 1, "page_token": page1["next_page_token"]}).json()
    assert [d["name"] for d in page1["datasets"] + page2["datasets"]] == ["churn", "iris"]
    assert page2["next_page_token"] is None
    versions = api.get("/api/v1/datasets/iris/versions").json()["versions"]
    assert [(v["ref"], v["version"]) for v in versions] == [("data:/iris@1", 1), ("data:/iris@2", 2)]
    assert versions[0]["digest"] != versions[1]["digest"]


@pytest.mark.parametrize("name, version, rows, column, kind", [
    ("iris", 1, 100, "petal_length", "float"),
    ("iris", 2, 150, "target", "int"),
    ("churn", 2, 800, "churned", "int"),
])
def test_version_has_schema_and_column_statistics(
    api: SyncClient, name: str, version: int, rows: int, column: str, kind: str
) -> None:
    v = api.get(f"/api/v1/datasets/{name}/versions/{version}").json()
    assert v["ref"] == f"data:/{name}@{version}" and v["profile"]["rows"] == rows
    col = v["profile"]["columns"][column]
    assert col["type"] == kind and col["nulls"] == 0 and col["min"] <= col["mean"] <= col["max"]
    assert set(col["quantiles"]) and col["distinct"] >= 2
    assert v["data_schema"]["columns"][column]["type"] == kind
    assert api.get(f"/api/v1/datasets/{name}/latest").json()["version"] == 2


def test_iris_target_statistics_are_the_data(api: SyncClient) -> None:
    one = api.get("/api/v1/datasets/iris/versions/1").json()["profile"]["columns"]["target"]
    two = api.get("/api/v1/datasets/iris/versions/2").json()["profile"]["columns"]["target"]
    assert (one["distinct"], one["max"]) == (2, 1) and (two["distinct"], two["max"]) == (3, 2)


def test_diff_between_versions(api: SyncClient) -> None:
    d = api.get("/api/v1/datasets/iris/diff", params={"a": 1, "b": 2}).json()
    assert (d["a"], d["b"], d["same_content"], d["rows"]) == ("data:/iris@1", "data:/iris@2", False, [100, 150])
    assert d["changed_columns"]["target"]["max"] == {"a": 1, "b": 2}
    churn = api.get("/api/v1/datasets/churn/diff", params={"a": 1, "b": 2}).json()
    mean = churn["changed_columns"]["age"]["mean"]
    assert mean["b"] - mean["a"] > 8  # the second version is shifted by 12 years on average
    same = api.get("/api/v1/datasets/churn/diff", params={"a": 2, "b": 2}).json()
    assert same["same_content"] is True and same["changed_columns"] == {}
    error(api.get("/api/v1/datasets/churn/diff", params={"a": 1}), 400, "INVALID", "b")
    error(api.get("/api/v1/datasets/churn/diff", params={"a": 1, "b": 9}), 404, "NOT_FOUND")


def test_validation_finds_the_new_class_and_the_shift(api: SyncClient) -> None:
    iris = api.get("/api/v1/datasets/iris/versions/2/validation").json()
    assert iris["against"] == "data:/iris@1" and iris["anomalies"]
    assert any(a["column"] == "target" for a in iris["anomalies"])
    same = api.get("/api/v1/datasets/churn/versions/1/validation", params={"against": 1}).json()
    assert same["anomalies"] == [] and same["passed"] is True
    error(api.get("/api/v1/datasets/churn/versions/1/validation"), 400, "INVALID", "against")


def test_lineage_shows_the_runs_that_read_a_version(api: SyncClient, api_world: World) -> None:
    graph = api.get("/api/v1/datasets/iris/versions/2/lineage", params={"direction": "down"}).json()
    assert graph["root"] == "data:/iris@2"
    downs = {(e["downstream"], e["relation"]) for e in graph["downstream"]}
    assert (f"runs:/{api_world.runs['iris-clf/2']}", "input") in downs
    assert any(d == "models:/iris-clf/2" for d, _ in downs)
    assert not any(d == f"runs:/{api_world.runs['iris-clf/1']}" for d, _ in downs)


@pytest.mark.parametrize("path, status, field", [
    ("/api/v1/datasets/nope/versions", 404, None),
    ("/api/v1/datasets/iris/versions/7", 404, None),
    ("/api/v1/datasets/nope/latest", 404, None),
    ("/api/v1/datasets/iris/versions/x", 400, "version"),
    ("/api/v1/datasets/iris/versions/2/lineage?depth=0", 400, "depth"),
    ("/api/v1/datasets?max_results=5000", 400, "max_results"),
])
def test_bad_ids_and_values(api: SyncClient, path: str, status: int, field: str | None) -> None:
    error(api.get(path), status, "NOT_FOUND" if status == 404 else "INVALID", field)
