"""``/api/v1/pipelines``: a real two-step pipeline run (local executor) with its steps,
cache state, inputs, outputs, metrics and captured logs."""

from __future__ import annotations

from typing import Any

import pytest

from fixtures.api_world import World, api, error  # noqa: F401  (api: fixture)
from fixtures.asgi import SyncClient


def test_list_runs(api: SyncClient, api_world: World) -> None:
    runs = api.get("/api/v1/pipelines/runs").json()["runs"]
    assert [r["run_id"] for r in runs] == [api_world.pipeline_run_id]
    run = runs[0]
    assert (run["pipeline"], run["executor"], run["status"], run["steps"], run["cached"]) == \
        ("numbers", "local", "FINISHED", 2, 0)
    assert run["params"] == {"n": "7"} and run["duration_s"] >= 0
    assert api.get("/api/v1/pipelines/runs", params={"pipeline": "other"}).json()["runs"] == []
    assert api.get("/api/v1/pipelines/runs", params={"status": "FAILED"}).json()["runs"] == []
    error(api.get("/api/v1/pipelines/runs", params={"status": "DONE"}), 400, "INVALID", "status")
    error(api.get("/api/v1/pipelines/runs", params={"page_token": "x"}), 400, "INVALID", "page_token")


def test_run_detail_with_dag_and_steps(api: SyncClient, api_world: World) -> None:
    run = api.get(f"/api/v1/pipelines/runs/{api_world.pipeline_run_id}").json()
    assert [s["id"] for s in run["dag"]["steps"]] == ["make_rows", "total"]
    steps = {s["step"]: s for s in run["step_runs"]}
    assert set(steps) == {"make_rows", "total"}
    make, total = steps["make_rows"], steps["total"]
    assert make["run_id"] == api_world.step_runs["make_rows"] and make["status"] == "FINISHED"
    assert (make["cache"], make["cached"]) == ("miss", False) and len(make["cache_key"]) > 10
    assert make["params"] == {"n": "7"} and make["inputs"] == [] and make["input_refs"] == []
    assert [o["name"] for o in make["outputs"]] == ["output"] and make["outputs"][0]["type_name"] == "builtins.list"
    assert total["inputs"] == [{"argument": "rows", "source": "make_rows.output"}]
    assert total["input_refs"] == [f"runs:/{make['run_id']}/outputs/output"]
    assert total["metrics"] == {"total": 21.0}  # 0 + 1 + … + 6
    assert total["duration_s"] is not None and total["ended_at"] >= total["started_at"]
    listed = api.get(f"/api/v1/pipelines/runs/{api_world.pipeline_run_id}/steps").json()["steps"]
    assert [s["step"] for s in listed] == [s["step"] for s in run["step_runs"]]


def test_step_log_is_what_the_step_printed(api: SyncClient, api_world: World) -> None:
    base = f"/api/v1/pipelines/runs/{api_world.pipeline_run_id}/steps"
    one = api.get(f"{base}/total").json()
    assert one["has_log"] is True
    log = api.get(f"{base}/total/log")
    assert log.status_code == 200 and log.headers["content-type"].startswith("text/plain")
    assert "summing 7 rows" in log.text and "making" not in log.text
    assert "making 7 rows" in api.get(f"{base}/make_rows/log").text


@pytest.mark.parametrize("suffix", ["", "/steps", "/steps/total", "/steps/total/log"])
def test_unknown_run_is_404(api: SyncClient, suffix: str) -> None:
    error(api.get(f"/api/v1/pipelines/runs/0123456789abcdef0123456789abcdef{suffix}"), 404, "NOT_FOUND")


def test_unknown_step_and_plain_run_are_404(api: SyncClient, api_world: World) -> None:
    body = error(api.get(f"/api/v1/pipelines/runs/{api_world.pipeline_run_id}/steps/nope"), 404, "NOT_FOUND")
    assert "make_rows" in body["message"]
    error(api.get(f"/api/v1/pipelines/runs/{api_world.runs['iris-clf/1']}"), 404, "NOT_FOUND")
