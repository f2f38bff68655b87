"""Durability matches the README: on SQLite params, tags, artifact references, registry and
data-version commits run with ``synchronous=FULL`` (survive power loss once they return);
metric batches and a run's start and end run with ``NORMAL`` (survive a process crash or
SIGKILL). What can be proven here: the pragma in
force for each kind of transaction, and survival of SIGKILL right after the call returns."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from conveyor.settings import Settings, TrackingSettings
from conveyor.store import Store
from conveyor.tracking import Tracker

_KINDS = {
    "INSERT INTO params": "param",
    "INSERT INTO run_tags": "tag",
    "INSERT INTO artifacts": "artifact reference",
    "INSERT INTO metrics": "metric batch",
    "UPDATE runs SET status": "run end",
    "INSERT INTO runs": "run",
}


@pytest.fixture
def sqlite_tracker(tmp_path: Path, blobs: Any) -> Iterator[tuple[Tracker, list[tuple[str, int]]]]:
    """A tracker on SQLite that records, for every commit, what it wrote and the
    ``synchronous`` level SQLite reports inside that very transaction."""
    store = Store.open(f"sqlite:///{tmp_path / 'c.db'}", create=True)
    seen: list[tuple[str, int]] = []
    current: dict[int, str] = {}

    @event.listens_for(store.engine, "before_cursor_execute")
    def _statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        for prefix, kind in _KINDS.items():
            if statement.startswith(prefix) and id(conn) not in current:
                current[id(conn)] = kind

    @event.listens_for(store.engine, "commit")
    def _commit(conn: Any) -> None:
        kind = current.pop(id(conn), None)
        if kind is not None:
            level = conn.connection.dbapi_connection.execute("PRAGMA synchronous").fetchone()[0]
            seen.append((kind, int(level)))

    tracker = Tracker(store, blobs, TrackingSettings(flush_interval=60, capture_git=False, capture_packages=False))
    yield tracker, seen
    tracker.close()


def test_every_kind_of_record_commits_with_the_documented_sync_level(
    sqlite_tracker: tuple[Tracker, list[tuple[str, int]]], tmp_path: Path
) -> None:
    tracker, seen = sqlite_tracker
    run = tracker.create_run("durable")
    tracker.log_params(run.id, {"alpha": 1})
    tracker.set_tags(run.id, {"team": "a"})
    tracker.log_text(run.id, "hello", "notes.txt")
    tracker.log_metric(run.id, "loss", 0.5, step=0)
    tracker.flush()
    tracker.log_metric(run.id, "loss", 0.4, step=1)
    tracker.end_run(run.id)
    full, normal = 2, 1
    assert seen == [
        ("run", normal),  # a run start: not synced; the param below syncs it too (WAL order)
        ("param", full),
        ("tag", full),
        ("artifact reference", full),
        ("metric batch", normal),  # the batch flush() wrote on its own: fast, not synced
        ("metric batch", normal),  # the last points, committed together with the run end
    ]


def test_registry_and_data_version_transactions_are_durable(tmp_path: Path) -> None:
    """Every ``Store.write()`` that is not a metric batch (registry, data versions, …) runs FULL."""
    store = Store.open(f"sqlite:///{tmp_path / 'c.db'}", create=True)
    with store.write() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    with store.write(durable=False) as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
    with store.write() as conn:  # the same pooled connection goes back to FULL
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    store.close()


def test_params_tags_artifacts_and_ended_runs_survive_sigkill_right_after_the_call(project: Path) -> None:
    code = """
        import os, signal, conveyor
        run = conveyor.start_run(experiment="sigkill")
        conveyor.log_params({"alpha": 0.5})
        conveyor.set_tag("team", "a")
        conveyor.log_text("weights", "model/weights.txt")
        for step in range(100):
            conveyor.log_metric("m", step, step=step)
        conveyor.flush()
        print(run.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    run_id = done.stdout.strip()
    tracker = Tracker.from_settings(Settings.load(project, env={}))
    run = tracker.get_run(run_id)
    assert run.params == {"alpha": "0.5"} and run.tags.get("team") == "a"
    assert tracker.read_artifact(run_id, "model/weights.txt") == b"weights"
    assert len(tracker.metric_history(run_id, "m")) == 100
    tracker.close()


def test_mlflow_api_writes_commit_with_the_documented_sync_level(
    sqlite_tracker: tuple[Tracker, list[tuple[str, int]]],
) -> None:
    """conveyor server's MLflow logging routes: points alone as metric batches (not synced),
    params and tags (alone or with points) synced, as README's durability table says."""
    from conveyor.server import _logging

    tracker, seen = sqlite_tracker
    run = tracker.create_run("served")
    seen.clear()
    _logging.log_metric(tracker, {"run_id": run.id, "key": "loss", "value": 0.5, "timestamp": 1, "step": 0})
    _logging.log_batch(tracker, {"run_id": run.id, "metrics": [{"key": "loss", "value": 0.4, "timestamp": 2, "step": 1}]})
    _logging.log_param(tracker, {"run_id": run.id, "key": "alpha", "value": "1"})
    _logging.set_tag(tracker, {"run_id": run.id, "key": "team", "value": "a"})
    _logging.log_batch(tracker, {"run_id": run.id, "metrics": [{"key": "loss", "value": 0.3, "timestamp": 3, "step": 2}],
                                 "params": [{"key": "beta", "value": "2"}]})
    full, normal = 2, 1
    assert seen == [("metric batch", normal), ("metric batch", normal), ("param", full), ("tag", full),
                    ("param", full)]
