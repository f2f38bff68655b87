"""Reads ride out a PostgreSQL blink: a connection reset as a SELECT goes out is retried
(bounded) and the read returns the right answer; a read inside a caller's transaction is
never retried (that transaction is over); a read that fails for another reason fails once.

The store is the test's PostgreSQL behind a TCP proxy that is cut (connections reset,
refused for a second) when the chosen SELECT is about to run.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import event, func, select

from conveyor.errors import NotFound, StorageError
from conveyor.store import runs
from conveyor.tracking import Tracker
from fixtures.asgi import server_client
from fixtures.proxy import TcpProxy, arm_fault, pg_proxy, proxied  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
API = "/api/2.0/mlflow"


def _world(tracker: Tracker) -> tuple[str, str]:
    """Two finished runs in experiment ``reads`` (accuracy 0.9 and 0.7), a registered model."""
    from conveyor.entities import RunStatus
    from conveyor.registry import Registry

    registry = Registry(tracker)
    tracker.store.transaction(lambda conn: registry.repo.ensure_model(conn, "churn"))

    ids = []
    for acc in (0.9, 0.7):
        run = tracker.create_run("reads")
        tracker.log_params(run.id, {"acc": str(acc)})
        tracker.log_metrics(run.id, {"acc": acc}, step=0)
        tracker.end_run(run.id, RunStatus.FINISHED)
        ids.append(run.id)
    tracker.flush()
    return ids[0], ids[1]


def _count_statements(tracker: Tracker, sql: str) -> list[str]:
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if sql in statement:
            seen.append(statement)

    event.listen(tracker.store.engine, "before_cursor_execute", before)
    return seen


READS = {
    "get_run": lambda t, best, other: t.get_run(best).params == {"acc": "0.9"},
    "search_runs": lambda t, best, other: [r.id for r in t.search_runs(
        "reads", filter="metrics.acc > 0.8", output="runs")] == [best],
    "metric_history": lambda t, best, other: [m.value for m in t.metric_history(other, "acc")] == [0.7],
    "list_experiments": lambda t, best, other: "reads" in [e.name for e in t.list_experiments()],
    "list_models": lambda t, best, other: [m.name for m in _registry(t).list_models(include_failed=True)] == ["churn"],
    "get_model": lambda t, best, other: _registry(t).get_model("churn").latest_version == 0,
}


def _registry(tracker: Tracker) -> Any:
    from conveyor.registry import Registry

    return Registry(tracker)


@pytest.mark.parametrize("read", sorted(READS))
def test_a_read_cut_mid_query_is_retried_and_right(proxied: tuple[TcpProxy, Tracker], read: str) -> None:
    proxy, tracker = proxied
    best, other = _world(tracker)
    selects = _count_statements(tracker, "SELECT")
    fired = arm_fault(tracker, proxy, "SELECT", "reset")
    assert READS[read](tracker, best, other)
    assert fired and proxy.commits_cut == 0
    assert selects.count(fired[0]) >= 2  # the cut SELECT went out again


@pytest.mark.parametrize("route", ["mlflow", "v1"])
def test_a_server_search_cut_mid_query_answers_the_right_runs(proxied: tuple[TcpProxy, Tracker], route: str) -> None:
    proxy, tracker = proxied
    best, _ = _world(tracker)
    exp_id = tracker.get_experiment("reads").id
    client = server_client(tracker)
    try:
        fired = arm_fault(tracker, proxy, "FROM runs", "reset")
        if route == "mlflow":
            response = client.post(f"{API}/runs/search", json={"experiment_ids": [str(exp_id)],
                                                               "filter": "metrics.acc > 0.8"})
            assert response.status_code == 200, response.text
            found = [r["info"]["run_id"] for r in response.json()["runs"]]
        else:
            response = client.post("/api/v1/runs/search", json={"experiments": ["reads"],
                                                                "filter": "metrics.acc > 0.8"})
            assert response.status_code == 200, response.text
            found = [r["id"] for r in response.json()["runs"]]
    finally:
        client.close()
    assert fired and found == [best]


def test_a_read_in_the_callers_transaction_is_not_retried(proxied: tuple[TcpProxy, Tracker]) -> None:
    proxy, tracker = proxied
    store = tracker.store
    _world(tracker)
    query = select(func.count()).select_from(runs)
    selects = _count_statements(tracker, "count(*)")
    fired = arm_fault(tracker, proxy, "count(*)", "reset")
    with pytest.raises(StorageError, match="unreachable"):
        with store.read() as conn:  # the caller's transaction: the failure ends it
            store.reading(conn, lambda c: c.execute(query).scalar_one())
    assert fired and len(selects) == 1
    threading.Event().wait(1.5)  # the proxy is back
    assert store.reading(None, lambda c: c.execute(query).scalar_one()) == 2  # its own transaction: retried


def test_a_read_that_fails_for_another_reason_fails_once(proxied: tuple[TcpProxy, Tracker]) -> None:
    _, tracker = proxied
    selects = _count_statements(tracker, "FROM runs")
    with pytest.raises(NotFound):
        tracker.get_run("f" * 32)
    assert len(selects) == 1


def test_a_read_gives_up_after_its_budget(pg_proxy: tuple[TcpProxy, str]) -> None:
    from conveyor.settings import StoreSettings
    from conveyor.store import Store

    proxy, url = pg_proxy
    store = Store.open(url, create=True, settings=StoreSettings(retry_seconds=1, connect_timeout=1))
    try:
        proxy.stop()  # and it stays down
        with pytest.raises(StorageError, match="unreachable") as info:
            store.query(lambda conn: conn.execute(select(func.count()).select_from(runs)).scalar_one())
        assert "retry_seconds" in (info.value.hint or "")
    finally:
        store.close()
        proxy.start()
