"""The reads users and server requests make most ride out a PostgreSQL blink: ``/api/v1``
lists and details, UI pages, data version reads, a pipeline's cache lookup, serving's model
resolution and prediction-log read, and monitoring history each answer right when the
connection is reset as their SELECT goes out.

One world (``fixtures.api_world.build``: data sets, registered models with aliases, a
pipeline run, served predictions, a monitor evaluation with an alert) is made once over a
PostgreSQL database reached through a TCP proxy; each test cuts the proxy (connections
reset, refused for a second) when its chosen SELECT is about to run and checks the answer
and that the cut statement went out again.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event

from fixtures.api_world import World, build
from fixtures.asgi import SyncClient, server_client
from fixtures.proxy import TcpProxy, fault_listener

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def blinky(postgres_admin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TcpProxy, World, Any]]:
    """The api world over PostgreSQL behind a proxy (reads retried for up to 15 s), the proxy,
    and the imported pipeline module of the world's pipeline run."""
    import psycopg
    from sqlalchemy.engine import make_url

    from conveyor.blobs import BlobStore
    from conveyor.settings import StoreSettings, TrackingSettings
    from conveyor.store import Store
    from conveyor.tracking import Tracker

    name = f"conveyor_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(f"{postgres_admin.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}")
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    root = tmp_path_factory.mktemp("read-blinks")
    store = Store.open(through, create=True, settings=StoreSettings(retry_seconds=15))
    blobs = BlobStore.open(root / "artifacts")
    blobs.init()
    tracker = Tracker(store, blobs, TrackingSettings(flush_interval=0.05, capture_git=False,
                                                     capture_packages=False, heartbeat_interval=3600))
    code = root / "code"
    code.mkdir()
    sys.path.insert(0, str(code))
    try:
        world = build(tracker, through, code)
        module = next(m for n, m in list(sys.modules.items())
                      if n.startswith("api_flow_") and getattr(m, "__conveyor_folder__", None) == code)
        yield proxy, world, module
    finally:
        sys.path.remove(str(code))
        tracker.close()
        store.close()
        proxy.stop()
        with psycopg.connect(postgres_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def cut(blinky: tuple[TcpProxy, World, Any]) -> Iterator[Callable[[str], tuple[list[str], list[str]]]]:
    """``cut(sql)`` arms one reset of the proxy at the next statement containing ``sql``; it
    returns the statement it fired at and every statement containing ``sql`` that ran."""
    proxy, world, _ = blinky
    engine = world.tracker.store.engine
    listeners: list[Any] = []

    def arm(sql: str) -> tuple[list[str], list[str]]:
        seen: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if sql in statement:
                seen.append(statement)

        before, fired = fault_listener(proxy, sql, "reset")
        for listener in (count, before):
            event.listen(engine, "before_cursor_execute", listener)
            listeners.append(listener)
        return fired, seen

    yield arm
    for listener in listeners:
        event.remove(engine, "before_cursor_execute", listener)


@pytest.fixture
def client(blinky: tuple[TcpProxy, World, Any]) -> Iterator[SyncClient]:
    c = server_client(blinky[1].tracker)
    yield c
    c.close()


def _retried(fired: list[str], seen: list[str]) -> None:
    assert fired, "the fault never fired: the chosen SELECT did not run"
    assert seen.count(fired[0]) >= 2, "the cut SELECT did not go out again"


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json() if response.headers.get("content-type", "").startswith("application/json") else response.text


# -- /api/v1 ----------------------------------------------------------------------------------
def test_an_api_list_of_pipeline_runs(blinky: tuple[TcpProxy, World, Any], cut: Any, client: SyncClient) -> None:
    world = blinky[1]
    fired, seen = cut("FROM pipeline_runs")
    runs = _ok(client.get("/api/v1/pipelines/runs", params={"pipeline": "numbers"}))["runs"]
    _retried(fired, seen)
    assert world.pipeline_run_id in [r["run_id"] for r in runs]


def test_an_api_pipeline_run_detail(blinky: tuple[TcpProxy, World, Any], cut: Any, client: SyncClient) -> None:
    world = blinky[1]
    fired, seen = cut("FROM step_executions")
    detail = _ok(client.get(f"/api/v1/pipelines/runs/{world.pipeline_run_id}"))
    _retried(fired, seen)
    assert {s["step"]: s["run_id"] for s in detail["step_runs"]} == world.step_runs
    assert detail["steps"] == 2


def test_an_api_monitor_evaluation_detail(blinky: tuple[TcpProxy, World, Any], cut: Any, client: SyncClient) -> None:
    world = blinky[1]
    fired, seen = cut("FROM monitor_alerts")
    detail = _ok(client.get(f"/api/v1/monitoring/evaluations/{world.monitor_evaluation_id}"))
    _retried(fired, seen)
    assert detail["status"] == "alert" and tuple(detail["alert_ids"]) == world.alert_ids


def test_an_api_list_of_alerts(blinky: tuple[TcpProxy, World, Any], cut: Any, client: SyncClient) -> None:
    world = blinky[1]
    fired, seen = cut("FROM monitor_alerts")
    alerts = _ok(client.get("/api/v1/monitoring/alerts", params={"model": "churn-rf"}))["alerts"]
    _retried(fired, seen)
    assert sorted(a["id"] for a in alerts) == sorted(world.alert_ids)


# -- monitoring history -----------------------------------------------------------------------
def test_an_api_drift_history(blinky: tuple[TcpProxy, World, Any], cut: Any, client: SyncClient) -> None:
    world = blinky[1]
    fired, seen = cut("FROM monitor_evaluations")
    series = _ok(client.get("/api/v1/monitoring/drift", params={"monitor": "churn-watch"}))
    _retried(fired, seen)
    points = series["points"]
    assert points and {p["evaluation_id"] for p in points} == {world.monitor_evaluation_id}
    assert {"age", "income", "tenure"} <= {p["column"] for p in points}


def test_a_monitoring_report_history(blinky: tuple[TcpProxy, World, Any], cut: Any) -> None:
    from conveyor.monitoring._report import report_data

    world = blinky[1]
    fired, seen = cut("FROM monitor_evaluations")
    data = report_data(world.tracker, "churn-rf")
    _retried(fired, seen)
    assert [p["id"] for p in data["series"]] == [world.monitor_evaluation_id]
    assert data["series"][0]["status"] == "alert"


# -- the web UI -------------------------------------------------------------------------------
def test_the_ui_pipelines_page(blinky: tuple[TcpProxy, World, Any], cut: Any, client: SyncClient) -> None:
    world = blinky[1]
    fired, seen = cut("FROM pipeline_runs")
    page = _ok(client.get("/pipelines"))
    _retried(fired, seen)
    assert f"/pipelines/runs/{world.pipeline_run_id}" in page


def test_the_ui_experiments_page(blinky: tuple[TcpProxy, World, Any], cut: Any, client: SyncClient) -> None:
    fired, seen = cut("GROUP BY runs.experiment_id")
    page = _ok(client.get("/experiments"))
    _retried(fired, seen)
    for name in ("iris", "churn", "numbers"):
        assert f">{name}<" in page


def test_the_ui_monitoring_page_of_a_model(blinky: tuple[TcpProxy, World, Any], cut: Any, client: SyncClient) -> None:
    fired, seen = cut("FROM retrain_triggers")
    page = _ok(client.get("/monitoring/churn-rf"))
    _retried(fired, seen)
    assert "churn-watch" in page


# -- data, pipelines, serving -----------------------------------------------------------------
def test_data_version_reads(blinky: tuple[TcpProxy, World, Any], cut: Any) -> None:
    import conveyor.data

    tracker = blinky[1].tracker
    fired, seen = cut("FROM dataset_versions")
    got = conveyor.data.get_version("churn@2", tracker=tracker)
    _retried(fired, seen)
    assert (got.name, got.version, got.kind) == ("churn", 2, "table")
    fired, seen = cut("FROM dataset_versions")
    assert [v.version for v in conveyor.data.versions("iris", tracker=tracker)] == [1, 2]
    _retried(fired, seen)
    fired, seen = cut("FROM dataset_versions")
    assert {(v.name, v.version) for v in conveyor.data.list_datasets(tracker=tracker)} >= {("iris", 2), ("churn", 2)}
    _retried(fired, seen)


def test_the_pipeline_cache_lookup(blinky: tuple[TcpProxy, World, Any], cut: Any) -> None:
    from conveyor.pipelines import run as run_pipeline

    _, world, module = blinky
    fired, seen = cut("step_executions.cache_key =")
    result = run_pipeline(module.numbers, params={"n": 7}, tracker=world.tracker, experiment="numbers")
    _retried(fired, seen)
    assert result.ok, {k: s.error for k, s in result.steps.items()}
    assert {k: s.cached for k, s in result.steps.items()} == {"make_rows": True, "total": True}


def test_serving_resolves_a_model_alias(blinky: tuple[TcpProxy, World, Any], cut: Any) -> None:
    from conveyor.serving import RegistrySource

    fired, seen = cut("FROM model_aliases")
    assert RegistrySource(blinky[1].tracker).resolve("models:/churn-rf@champion") == "2"
    _retried(fired, seen)


def test_serving_reads_its_prediction_log(blinky: tuple[TcpProxy, World, Any], cut: Any) -> None:
    from conveyor.serving import read_prediction_log

    world = blinky[1]
    fired, seen = cut("FROM serving_log_files")
    frame = read_prediction_log("churn-rf", tracker=world.tracker)
    _retried(fired, seen)
    assert sorted(set(frame["request_id"])) == sorted(world.request_ids) and len(frame) == 60
