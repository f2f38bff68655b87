"""``/api/v1`` experiments, runs and artifacts through the real ASGI app over real stores."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest

from fixtures.asgi import server_client


@pytest.fixture
def client(tracker: Any) -> Any:
    made = server_client(tracker)
    yield made
    made.close()


def _run(client: Any, **extra: Any) -> dict[str, Any]:
    made = client.post("/api/v1/runs", json={"experiment": "api", **extra})
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


def test_experiments_create_get_list_update(client: Any) -> None:
    made = client.post("/api/v1/experiments", json={"name": "exp-a", "description": "d", "tags": {"team": "ml"}})
    assert made.status_code == 201, made.text
    exp = made.json()
    assert exp["name"] == "exp-a" and exp["tags"] == {"team": "ml"}
    again = client.post("/api/v1/experiments", json={"name": "exp-a"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "ALREADY_EXISTS"
    assert client.get(f"/api/v1/experiments/{exp['id']}").json()["name"] == "exp-a"
    assert client.get("/api/v1/experiments/by-name", params={"name": "exp-a"}).json()["id"] == exp["id"]
    missing = client.get("/api/v1/experiments/by-name", params={"name": "nope"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    changed = client.request("PATCH", f"/api/v1/experiments/{exp['id']}",
                             json={"description": "new", "tags": {"stage": "dev"}, "delete_tags": ["team"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["description"] == "new" and changed.json()["tags"] == {"stage": "dev"}
    archived = client.request("PATCH", f"/api/v1/experiments/{exp['id']}", json={"archived": True})
    assert archived.json()["archived"] is True
    assert "exp-a" not in [e["name"] for e in client.get("/api/v1/experiments").json()]
    assert "exp-a" in [e["name"] for e in client.get("/api/v1/experiments?include_archived=true").json()]
    assert client.get("/api/v1/experiments/99999999999").status_code == 404


def test_run_batch_is_idempotent_and_history_downsamples(client: Any, tracker: Any) -> None:
    run = _run(client, name="r1", tags={"k": "v"}, user="alice", host="box")
    assert run["status"] == "RUNNING" and run["tags"] == {"k": "v"} and run["user"] == "alice"
    points = [{"key": "loss", "value": 1.0 / (i + 1), "step": i, "timestamp": 1000 + i} for i in range(1000)]
    points[500]["value"] = 50.0  # a spike the downsampling must keep
    points.append({"key": "odd", "value": "NaN", "step": 0, "timestamp": 1})
    points.append({"key": "big", "value": "Infinity", "step": 0, "timestamp": 1})
    key = uuid.uuid4().hex
    body = {"metrics": points, "params": {"lr": 0.1}, "tags": {"phase": "train"}}
    first = client.post(f"/api/v1/runs/{run['id']}/batch", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 200, first.text
    assert first.json() == {"applied": True, "metrics": 1002}
    second = client.post(f"/api/v1/runs/{run['id']}/batch", json=body, headers={"Idempotency-Key": key})
    assert second.json() == {"applied": False, "metrics": 0}
    full = client.get(f"/api/v1/runs/{run['id']}/metrics/loss").json()
    assert full["total"] == 1000 and len(full["points"]) == 1000
    small = client.get(f"/api/v1/runs/{run['id']}/metrics/loss", params={"max_points": 20}).json()
    assert small["total"] == 1000 and len(small["points"]) <= 20
    values = [p["value"] for p in small["points"]]
    assert 50.0 in values and 1.0 in values and min(values) == pytest.approx(1 / 1000)
    assert [p["step"] for p in small["points"]] == sorted(p["step"] for p in small["points"])
    # the same buckets as the UI's charts (Tracker.metric_series): per bucket, the kept points'
    # lowest and highest value are the bucket's low and high
    series = tracker.metric_series(run["id"], "loss", buckets=10)
    by_bucket: dict[int, list[float]] = {}
    for p in small["points"]:
        by_bucket.setdefault(min(p["step"] * 10 // 999, 9), []).append(p["value"])
    assert [min(v) for _, v in sorted(by_bucket.items())] == pytest.approx(series.low)
    assert [max(v) for _, v in sorted(by_bucket.items())] == pytest.approx(series.high)
    got = client.get(f"/api/v1/runs/{run['id']}").json()
    assert got["params"] == {"lr": "0.1"} and got["tags"] == {"k": "v", "phase": "train"}
    assert got["metrics"]["odd"] == "NaN" and got["metrics"]["big"] == "Infinity"
    conflict = client.post(f"/api/v1/runs/{run['id']}/batch", json={"params": {"lr": 0.2}})
    assert conflict.status_code == 400 and "lr" in conflict.json()["error"]["message"]
    ended = client.post(f"/api/v1/runs/{run['id']}/batch", json={"end": {"status": "FAILED", "error": "boom"}})
    assert ended.status_code == 200
    got = client.get(f"/api/v1/runs/{run['id']}").json()
    assert got["status"] == "FAILED" and got["error"] == "boom"
    assert client.post(f"/api/v1/runs/{run['id']}/end", json={}).status_code == 409


def test_bad_batches_are_400_naming_the_field(client: Any) -> None:
    run = _run(client)
    bad_key = client.post(f"/api/v1/runs/{run['id']}/batch", json={}, headers={"Idempotency-Key": "a/b"})
    assert bad_key.status_code == 400 and bad_key.json()["error"]["field"] == "Idempotency-Key"
    bad_value = client.post(f"/api/v1/runs/{run['id']}/batch",
                            json={"metrics": [{"key": "x", "value": "high", "step": 0, "timestamp": 1}]})
    assert bad_value.status_code == 400 and bad_value.json()["error"]["field"] == "metrics.0.value"
    nul = client.post(f"/api/v1/runs/{run['id']}/batch", json={"tags": {"a": "b\x00"}})
    assert nul.status_code == 400
    assert client.post(f"/api/v1/runs/{'f' * 32}/batch", json={}).status_code == 404


def test_search_pages_with_the_cli_filter_language(client: Any) -> None:
    ids = []
    for i in range(5):
        run = _run(client, name=f"s{i}")
        client.post(f"/api/v1/runs/{run['id']}/batch",
                    json={"metrics": [{"key": "acc", "value": i / 10, "step": 0, "timestamp": 1}],
                          "params": {"model": "rf" if i % 2 else "lr"}})
        ids.append(run["id"])
    seen: list[str] = []
    token = None
    while True:
        page = client.post("/api/v1/runs/search", json={
            "experiments": ["api"], "filter": "metrics.acc > 0.05 and params.model = 'rf'",
            "order_by": ["metrics.acc desc"], "max_results": 1, "page_token": token}).json()
        seen += [r["id"] for r in page["runs"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == [ids[3], ids[1]]
    bad = client.post("/api/v1/runs/search", json={"filter": "metrics.acc >>> 1"})
    assert bad.status_code == 400
    bad_token = client.post("/api/v1/runs/search", json={"page_token": "garbage"})
    assert bad_token.status_code == 400 and bad_token.json()["error"]["field"] == "page_token"


def test_delete_restore_and_retried_create(client: Any) -> None:
    run_id = uuid.uuid4().hex
    first = _run(client, run_id=run_id)
    again = _run(client, run_id=run_id)
    assert first["id"] == again["id"] == run_id
    assert client.request("DELETE", f"/api/v1/runs/{run_id}").status_code == 204
    assert client.get(f"/api/v1/runs/{run_id}").json()["deleted"] is True
    refused = client.post(f"/api/v1/runs/{run_id}/batch", json={"tags": {"a": "b"}})
    assert refused.status_code == 409
    assert client.post(f"/api/v1/runs/{run_id}/restore").json()["deleted"] is False


def test_artifacts_upload_download_ranges_and_folders(client: Any) -> None:
    run = _run(client)
    base = f"/api/v1/runs/{run['id']}"
    data = bytes(range(256)) * 100
    up = client.put(f"{base}/artifacts/data/blob.bin", content=data)
    assert up.status_code == 201, up.text
    assert up.json()["size"] == len(data) and up.json()["path"] == "data/blob.bin"
    whole = client.get(f"{base}/artifacts/data/blob.bin")
    assert whole.status_code == 200 and whole.content == data
    part = client.get(f"{base}/artifacts/data/blob.bin", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = client.get(f"{base}/artifacts/data/blob.bin", headers={"Range": "bytes=-5"})
    assert tail.content == data[-5:]
    assert client.get(f"{base}/artifacts/data/blob.bin", headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    a = client.put(f"{base}/blobs", content=b"alpha").json()
    b = client.put(f"{base}/blobs", content=b"beta!!").json()
    folder = client.post(f"{base}/folders/model", json={"entries": [
        {"path": "a.txt", **a}, {"path": "sub/b.txt", **b}]})
    assert folder.status_code == 201, folder.text
    assert folder.json()["is_dir"] is True and folder.json()["size"] == 11
    inner = client.get(f"{base}/artifacts/model/sub/b.txt")
    assert inner.content == b"beta!!"
    manifest = client.get(f"{base}/artifacts/model")
    assert manifest.headers["x-conveyor-is-dir"] == "true"
    listed = client.get(f"{base}/artifacts").json()
    assert sorted(x["path"] for x in listed) == ["data/blob.bin", "model"]
    files = client.get(f"{base}/artifact-files").json()
    assert sorted(f["path"] for f in files) == ["data/blob.bin", "model/a.txt", "model/sub/b.txt"]
    unknown = client.post(f"{base}/folders/other", json={"entries": [
        {"path": "x", "digest": "blake3:" + "0" * 64, "size": 1}]})
    assert unknown.status_code == 400


def test_nan_free_json_everywhere(client: Any) -> None:
    run = _run(client)
    client.post(f"/api/v1/runs/{run['id']}/batch",
                json={"metrics": [{"key": "m", "value": "-Infinity", "step": 0, "timestamp": 1}]})
    body = client.get(f"/api/v1/runs/{run['id']}/metrics/m").json()
    assert body["points"][0]["value"] == "-Infinity"
    assert math.isinf(float(body["points"][0]["value"]))
