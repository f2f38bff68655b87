"""``conveyor import mlflow`` through a PostgreSQL blink copies each thing exactly once.

The source is an MLflow file store laid out as mlflow writes it (``<experiment id>/meta.yaml``,
``<run id>/{meta.yaml,metrics,params,tags,artifacts}``; the suite in
``test_import_mlflow.py`` checks the importer against stores written by the mlflow package
itself). The conveyor store is the test's PostgreSQL behind a TCP proxy, cut when a chosen
statement is about to run (``reset``) or after the COMMIT reached the server with its answer
swallowed (``lost_ack``). An import that outlives the retry budget fails, and the next one
resumes where it stopped. Rows are counted around the proxy.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from conveyor.errors import StorageError
from conveyor.importers import import_mlflow
from conveyor.store import artifacts, experiments, metrics, params, runs
from conveyor.tracking import Tracker
from fixtures.proxy import TcpProxy, arm_fault, count_rows, pg_proxy, proxied  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
RUN_ID = "0123456789abcdef0123456789abcdef"
STEPS = 40
FILES = {"model.txt": "weights", "plots/loss.csv": "step,loss\n0,1.0\n", "notes.md": "# through a blink"}


def _mlflow_file_store(root: Path) -> Path:
    """One experiment with one finished run: a metric history, a param, a tag, three files."""
    mlruns = root / "mlruns"
    exp = mlruns / "1"
    run = exp / RUN_ID
    art = run / "artifacts"
    for folder in (exp / "tags", run / "metrics", run / "params", run / "tags", art / "plots"):
        folder.mkdir(parents=True, exist_ok=True)
    (exp / "meta.yaml").write_text(
        f"artifact_location: {exp.as_uri()}\ncreation_time: 1700000000000\nexperiment_id: '1'\n"
        "last_update_time: 1700000000000\nlifecycle_stage: active\nname: blinky\n", encoding="utf-8")
    (run / "meta.yaml").write_text(
        f"artifact_uri: {art.as_uri()}\nend_time: 1700000100000\nentry_point_name: ''\nexperiment_id: '1'\n"
        f"lifecycle_stage: active\nrun_id: {RUN_ID}\nrun_name: through-a-blink\nrun_uuid: {RUN_ID}\n"
        "source_name: ''\nsource_type: 4\nsource_version: ''\nstart_time: 1700000000000\nstatus: 3\n"
        "tags: []\nuser_id: ana\n", encoding="utf-8")
    (run / "metrics" / "loss").write_text(
        "".join(f"{1700000000000 + step} {1.0 / (step + 1)} {step}\n" for step in range(STEPS)), encoding="utf-8")
    (run / "params" / "lr").write_text("0.1", encoding="utf-8")
    (run / "tags" / "mlflow.runName").write_text("through-a-blink", encoding="utf-8")
    (run / "tags" / "team").write_text("ml", encoding="utf-8")
    for rel, body in FILES.items():
        (art / rel).write_text(body, encoding="utf-8")
    return mlruns


def _count(url: str, table: Any, *where: Any) -> int:
    return count_rows(url, select(func.count()).select_from(table).where(*where))


def _copied_once(tracker: Tracker, url: str) -> None:
    assert _count(url, experiments, experiments.c.name == "blinky") == 1
    assert _count(url, runs, runs.c.id == RUN_ID) == 1
    assert _count(url, metrics, metrics.c.run_id == RUN_ID) == STEPS
    assert _count(url, params, params.c.run_id == RUN_ID) == 1
    assert _count(url, artifacts, artifacts.c.run_id == RUN_ID) == len(FILES)
    run = tracker.get_run(RUN_ID)
    assert run.name == "through-a-blink" and run.params == {"lr": "0.1"} and run.tags["team"] == "ml"
    assert run.tags["conveyor.import.state"] == "done"
    assert [m.step for m in tracker.metric_history(RUN_ID, "loss")] == list(range(STEPS))
    for rel, body in FILES.items():
        assert tracker.read_artifact(RUN_ID, rel).decode() == body


@pytest.mark.parametrize(("sql", "fault"), [
    ("INTO experiments", "lost_ack"),
    ("INTO runs", "reset"),
    ("INTO runs", "lost_ack"),
    ("INTO artifacts", "reset"),
    ("INTO artifacts", "lost_ack"),
])
def test_an_import_through_a_blink_copies_each_thing_once(
    proxied: tuple[TcpProxy, Tracker], postgres_url: str, tmp_path: Path, sql: str, fault: str
) -> None:
    proxy, tracker = proxied
    source = _mlflow_file_store(tmp_path / "mlflow")
    fired = arm_fault(tracker, proxy, sql, fault)
    report = import_mlflow(tracker, str(source))
    assert fired and proxy.commits_cut == (1 if fault == "lost_ack" else 0)
    assert report.problems == [] and report.refused == []
    assert (report.experiments_created, report.runs_copied, report.metric_points) == (1, 1, STEPS)
    assert report.artifact_files == len(FILES)
    _copied_once(tracker, postgres_url)
    again = import_mlflow(tracker, str(source))  # a second import finds everything there
    assert (again.runs_copied, again.runs_already_imported, again.artifact_files) == (0, 1, 0)
    _copied_once(tracker, postgres_url)


def test_an_import_cut_off_longer_than_its_retries_resumes_and_copies_the_rest_once(
    pg_proxy: tuple[TcpProxy, str], postgres_url: str, blobs: Any, tmp_path: Path
) -> None:
    from sqlalchemy import event

    from conveyor.settings import StoreSettings, TrackingSettings
    from conveyor.store import Store

    proxy, url = pg_proxy
    store = Store.open(url, create=True, settings=StoreSettings(retry_seconds=1, connect_timeout=1))
    tracker = Tracker(store, blobs, TrackingSettings(capture_git=False, capture_packages=False,
                                                     heartbeat_interval=3600))
    source = _mlflow_file_store(tmp_path / "mlflow")
    seen: list[str] = []
    back: list[threading.Timer] = []

    def second_artifact(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "INTO artifacts" not in statement:
            return
        seen.append(statement)
        if len(seen) == 2:  # the first file is in; the database goes away for longer than the retries
            proxy.stop()
            back.append(threading.Timer(4.0, proxy.start))
            back[0].start()

    event.listen(store.engine, "before_cursor_execute", second_artifact)
    try:
        with pytest.raises(StorageError, match="unreachable"):
            import_mlflow(tracker, str(source))
        assert _count(postgres_url, runs, runs.c.id == RUN_ID) == 1
        assert _count(postgres_url, artifacts, artifacts.c.run_id == RUN_ID) == 1  # interrupted
        event.remove(store.engine, "before_cursor_execute", second_artifact)
        back[0].join()  # the database is back
        resumed = import_mlflow(tracker, str(source))
        assert (resumed.runs_copied, resumed.runs_resumed, resumed.artifact_files) == (0, 1, len(FILES) - 1)
        _copied_once(tracker, postgres_url)
    finally:
        tracker.close()
