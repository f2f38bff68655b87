"""``/api/v1/models``: the registry over real versions of two model kinds (a logistic
regression and a random forest), a gated promotion and plain alias moves."""

from __future__ import annotations

from typing import Any

import pytest

from fixtures.api_world import World, api, error  # noqa: F401  (api: fixture)
from fixtures.asgi import SyncClient


def test_list_search_and_pages(api: SyncClient) -> None:
    names = [m["name"] for m in api.get("/api/v1/models").json()["models"]]
    assert {"iris-clf", "churn-rf"} <= set(names) and names == sorted(names)
    found = api.get("/api/v1/models", params={"search": "IRIS"}).json()["models"]
    assert [m["name"] for m in found] == ["iris-clf"]
    assert found[0]["latest_version"] == 2 and found[0]["aliases"] == {"champion": 2}
    first = api.get("/api/v1/models", params={"max_results": 1}).json()
    second = api.get("/api/v1/models", params={"max_results": 1, "page_token": first["next_page_token"]}).json()
    assert first["models"][0]["name"] == names[0] and second["models"][0]["name"] == names[1]
    error(api.get("/api/v1/models", params={"page_token": "nonsense"}), 400, "INVALID", "page_token")
    error(api.get("/api/v1/models", params={"max_results": 0}), 400, "INVALID", "max_results")


@pytest.mark.parametrize("name, version, flavor, inputs", [
    ("iris-clf", 2, "sklearn", ["sepal_length", "sepal_width", "petal_length", "petal_width"]),
    ("churn-rf", 2, "sklearn", ["age", "income", "tenure"]),
])
def test_version_detail_has_status_signature_and_data(
    api: SyncClient, api_world: World, name: str, version: int, flavor: str, inputs: list[str]
) -> None:
    v = api.get(f"/api/v1/models/{name}/versions/{version}").json()
    assert v["status"] == "READY" and v["uri"] == f"models:/{name}/{version}"
    assert v["run_id"] == api_world.runs[f"{name}/{version}"] and v["source"] == f"runs:/{v['run_id']}/model"
    assert v["flavor"] == flavor and [c["name"] for c in v["signature"]["inputs"]] == inputs
    assert any(r.startswith("scikit-learn==") for r in v["requirements"])
    assert v["data_versions"] == (["data:/iris@2"] if name == "iris-clf" else ["data:/churn@1"])
    listed = api.get(f"/api/v1/models/{name}/versions").json()["versions"]
    assert [x["version"] for x in listed][:2] == [1, 2]
    assert api.get(f"/api/v1/models/{name}/aliases/champion").json()["version"] == 2
    assert api.get(f"/api/v1/models/{name}/latest").json()["version"] >= 2


def test_iris_tags_and_lineage(api: SyncClient, api_world: World) -> None:
    v = api.get("/api/v1/models/iris-clf/versions/1").json()
    assert v["tags"] == {"C": "0.1"} and v["aliases"] == []
    graph = api.get("/api/v1/models/iris-clf/versions/2/lineage", params={"direction": "up"}).json()
    assert graph["root"] == "models:/iris-clf/2" and graph["downstream"] == []
    ups = {(e["upstream"], e["relation"]) for e in graph["upstream"]}
    assert (f"runs:/{api_world.runs['iris-clf/2']}", "registered_as") in ups
    assert any(u == "data:/iris@2" for u, _ in ups)
    error(api.get("/api/v1/models/iris-clf/versions/2/lineage", params={"direction": "sideways"}),
          400, "INVALID", "direction")


def test_alias_history_names_who_when_why_and_the_gate_evidence(api: SyncClient, api_world: World) -> None:
    events = api.get("/api/v1/models/churn-rf/aliases/champion/history").json()["events"]
    moves = [(e["kind"], e["from_value"], e["to_value"], e["user"], e["reason"]) for e in events]
    assert moves == [("alias", None, "1", "alice", "baseline"), ("alias", "1", "2", "carol", "gate passed")]
    assert events[0]["evaluation"] is None and events[0]["at"] <= events[1]["at"]
    evidence = events[1]["evaluation"]
    assert events[1]["evaluation_id"] == api_world.evaluation_id == evidence["id"]
    assert evidence["passed"] is True and evidence["gate"] == "api-test" and evidence["version"] == 2
    assert evidence["champion_version"] == 1 and 0.6 <= evidence["metrics"]["accuracy"] <= 1
    assert any(c["kind"] == "threshold" and c["evidence"]["metric"] == "accuracy" and c["passed"]
               for c in evidence["checks"])
    iris = api.get("/api/v1/models/iris-clf/aliases/champion/history").json()["events"]
    assert [(e["from_value"], e["to_value"], e["user"]) for e in iris] == [(None, "1", "alice"), ("1", "2", "bob")]
    everything = api.get("/api/v1/models/iris-clf/history").json()["events"]
    assert [e["kind"] for e in everything] == ["register", "register", "alias", "alias"]
    at = api.get("/api/v1/models/iris-clf/aliases-at", params={"at": str(iris[0]["at"])}).json()
    assert at["aliases"] == {"champion": 1}
    error(api.get("/api/v1/models/iris-clf/aliases-at", params={"at": "yesterday-ish"}), 400, "INVALID", "at")
    error(api.get("/api/v1/models/iris-clf/history", params={"until": "soon"}), 400, "INVALID", "until")


def test_gate_evaluations_of_a_version(api: SyncClient, api_world: World) -> None:
    found = api.get("/api/v1/models/churn-rf/versions/2/evaluations").json()["evaluations"]
    assert [e["id"] for e in found] == [api_world.evaluation_id]
    assert found[0]["n_rows"] == 300 and found[0]["data_schema"]
    assert api.get("/api/v1/models/churn-rf/versions/1/evaluations").json()["evaluations"] == []
    one = api.get(f"/api/v1/models/churn-rf/evaluations/{api_world.evaluation_id}").json()
    assert one == found[0]
    error(api.get("/api/v1/models/churn-rf/evaluations/nope"), 404, "NOT_FOUND")


def test_model_card(api: SyncClient) -> None:
    card = api.get("/api/v1/models/churn-rf/versions/2/card").json()
    assert card["markdown"].startswith("# Model card: churn-rf version 2")
    assert "accuracy" in card["markdown"]


@pytest.mark.parametrize("path, field", [
    ("/api/v1/models/no-such-model", None),
    ("/api/v1/models/iris-clf/versions/99", None),
    ("/api/v1/models/iris-clf/aliases/nobody", None),
    ("/api/v1/models/no-such-model/versions/1/evaluations", None),
    ("/api/v1/models/no-such-model/aliases/champion/history", None),
])
def test_unknown_ids_are_404(api: SyncClient, path: str, field: str | None) -> None:
    error(api.get(path), 404, "NOT_FOUND", field)


@pytest.mark.parametrize("path, field", [
    ("/api/v1/models/iris-clf/versions/abc", "version"),
    ("/api/v1/models/iris-clf/versions/0", "version"),
    ("/api/v1/models/iris-clf/versions/99999999999", "version"),
])
def test_bad_path_values_are_400_naming_the_field(api: SyncClient, path: str, field: str) -> None:
    error(api.get(path), 400, "INVALID", field)


def test_writes_create_register_tag_alias_rollback_archive_delete(api: SyncClient, api_world: World) -> None:
    made = api.post("/api/v1/models", json={"name": "copy", "description": "a copy"})
    assert made.status_code == 201 and made.json()["latest_version"] == 0
    error(api.post("/api/v1/models", json={"name": "copy"}), 409, "ALREADY_EXISTS", "name")
    error(api.post("/api/v1/models", json={"name": "a/b"}), 400, "INVALID", "name")
    error(api.post("/api/v1/models", json={"name": "x", "colour": "red"}), 400, "INVALID", "colour")
    assert api.request("PATCH", "/api/v1/models/copy", json={"description": "new"}).json()["description"] == "new"
    for key in ("iris-clf/1", "churn-rf/1"):  # two model kinds under one name
        v = api.post("/api/v1/models/copy/versions", json={"source": f"runs:/{api_world.runs[key]}/model",
                                                            "tags": {"from": key}})
        assert v.status_code == 201 and v.json()["status"] == "READY", v.text
    error(api.post("/api/v1/models/copy/versions", json={"source": "runs:/0123456789abcdef0123456789abcdef/model"}),
          404, "NOT_FOUND")
    patched = api.request("PATCH", "/api/v1/models/copy/versions/2",
                          json={"description": "forest", "tags": {"ok": "yes"}, "delete_tags": ["from"]}).json()
    assert patched["description"] == "forest" and patched["tags"] == {"ok": "yes"}
    set1 = api.put("/api/v1/models/copy/aliases/prod", json={"version": 1, "reason": "start"}).json()
    set2 = api.put("/api/v1/models/copy/aliases/prod", json={"version": 2, "reason": "forest"}).json()
    assert (set1["to_value"], set2["from_value"], set2["to_value"], set2["reason"]) == ("1", "1", "2", "forest")
    back = api.post("/api/v1/models/copy/aliases/prod/rollback", json={"reason": "forest misbehaves"}).json()
    assert (back["kind"], back["to_value"], back["reason"]) == ("rollback", "1", "forest misbehaves")
    refused = api.post("/api/v1/models/copy/versions/2/promote", json={"alias": "prod"})
    error(refused, 409, "CONFLICT")
    forced = api.post("/api/v1/models/copy/versions/2/promote", json={"alias": "prod", "force": True,
                                                                      "reason": "hotfix 812"}).json()
    assert forced["forced"] is True and forced["to_value"] == "2"
    error(api.request("DELETE", "/api/v1/models/copy/versions/2"), 409, "CONFLICT")
    gone = api.request("DELETE", "/api/v1/models/copy/aliases/prod", params={"reason": "retired"}).json()
    assert (gone["kind"], gone["from_value"], gone["reason"]) == ("alias_deleted", "2", "retired")
    assert api.post("/api/v1/models/copy/versions/2/archive", json={"reason": "old"}).json()["status"] == "ARCHIVED"
    error(api.put("/api/v1/models/copy/aliases/prod", json={"version": 2}), 409, "CONFLICT")
    assert api.post("/api/v1/models/copy/versions/2/restore").json()["status"] == "READY"
    assert api.request("DELETE", "/api/v1/models/copy/versions/2", params={"reason": "done"}).status_code == 204
    error(api.get("/api/v1/models/copy/versions/2"), 404, "NOT_FOUND")
    kinds = [e["kind"] for e in api.get("/api/v1/models/copy/history").json()["events"]]
    assert kinds == ["register", "register", "alias", "alias", "rollback", "promote_refused", "alias",
                     "alias_deleted", "status", "status", "deleted"]
    error(api.put("/api/v1/models/copy/aliases/prod", json={"version": "two"}), 400, "INVALID", "version")
