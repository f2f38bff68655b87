"""Nothing lost when PostgreSQL blinks: a TCP proxy in front of the real server is stopped
and restarted during metrics, during ``log_param``, while an artifact is recorded and at run end; every point and param
arrives exactly once, and a run whose process was SIGKILLed is marked KILLED."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conveyor.entities import RunStatus
from conveyor.settings import StoreSettings, TrackingSettings
from conveyor.store import Store, metrics, params
from conveyor.tracking import Tracker
from conveyor.tracking._heartbeat import mark_stale
from fixtures.proxy import TcpProxy, pg_proxy  # noqa: F401  (fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _tracker(url: str, blobs: object, spool: Path | None, *, retry: float = 5.0, beat: float = 30.0) -> Tracker:
    store = Store.open(url, create=True, settings=StoreSettings(retry_seconds=retry))
    settings = TrackingSettings(flush_interval=0.05, capture_git=False, capture_packages=False, heartbeat_interval=beat)
    return Tracker(store, blobs, settings, spool_dir=spool)  # type: ignore[arg-type]


def _count_points(url: str, run_id: str) -> tuple[int, int]:
    """(points stored, distinct steps) of metric ``m``, read directly, around the proxy."""
    store = Store.open(url)
    with store.read() as conn:
        where = (metrics.c.run_id == run_id) & (metrics.c.key == "m")
        total = conn.execute(select(func.count()).where(where)).scalar_one()
        steps = conn.execute(select(func.count(func.distinct(metrics.c.step))).where(where)).scalar_one()
    store.close()
    return int(total), int(steps)


def test_log_param_and_tags_ride_out_a_two_second_outage(
    pg_proxy: tuple[TcpProxy, str], postgres_url: str, blobs: object
) -> None:
    proxy, url = pg_proxy
    tracker = _tracker(url, blobs, None)
    run = tracker.create_run("blink")
    back = proxy.outage(2.0)
    tracker.log_params(run.id, {"lr": 0.1, "depth": 6})  # no exception: retried until it is back
    tracker.set_tags(run.id, {"team": "a"})
    back.join()
    proxy.outage(1.0)
    tracker.log_params(run.id, {"lr": 0.1})  # the same value again, through another blink: a no-op
    proxy.outage(1.5)
    tracker.log_text(run.id, "weights", "model/weights.txt")  # the artifact's row, through a blink
    assert [a.path for a in tracker.list_artifacts(run.id)] == ["model/weights.txt"]
    tracker.end_run(run.id)
    tracker.close()
    direct = Store.open(postgres_url)
    with direct.read() as conn:
        rows = conn.execute(select(params.c.key, params.c.value).where(params.c.run_id == run.id)).all()
        assert sorted(rows) == [("depth", "6"), ("lr", "0.1")]
        assert direct.runs.get(conn, run.id).status is RunStatus.FINISHED
    direct.close()


def test_every_point_arrives_once_through_an_outage_during_metrics(
    pg_proxy: tuple[TcpProxy, str], postgres_url: str, blobs: object, tmp_path: Path
) -> None:
    proxy, url = pg_proxy
    tracker = _tracker(url, blobs, tmp_path / "spool")
    run = tracker.create_run("blink")
    outage: threading.Thread | None = None
    for step in range(3000):
        tracker.log_metric(run.id, "m", step * 0.5, step=step)
        if step == 1000:
            outage = proxy.outage(1.5)
        if step % 100 == 0:
            time.sleep(0.01)  # spread the points over several background batches
    assert outage is not None
    outage.join()
    tracker.end_run(run.id)
    tracker.close()
    assert _count_points(postgres_url, run.id) == (3000, 3000)
    assert list((tmp_path / "spool").glob("*.jsonl")) == []  # nothing left behind


def test_an_outage_at_run_end_is_spooled_and_replayed_exactly_once(
    pg_proxy: tuple[TcpProxy, str], postgres_url: str, blobs: object, tmp_path: Path
) -> None:
    proxy, url = pg_proxy
    spool = tmp_path / "spool"
    tracker = _tracker(url, blobs, spool, retry=1.0)
    run = tracker.create_run("blink")
    tracker.log_params(run.id, {"kind": "forest"})
    for step in range(1611):
        tracker.log_metric(run.id, "m", float(step), step=step)
    proxy.stop()
    tracker.end_run(run.id)  # the store is gone: spooled, the training goes on
    tracker.close()  # still down: the spool file stays for the next process
    files = list(spool.glob("*.jsonl"))
    assert len(files) == 1 and files[0].stat().st_size > 0
    kept = tmp_path / "copy.jsonl"
    shutil.copy(files[0], kept)

    proxy.start()
    later = _tracker(url, blobs, spool)  # "the next process"
    report = later.sync()
    assert report.runs_ended == 1 and report.points_written > 0
    assert later.get_run(run.id).status is RunStatus.FINISHED
    assert _count_points(postgres_url, run.id) == (1611, 1611)
    shutil.copy(kept, files[0])  # the same spool replayed again (e.g. a crash before unlink)
    again = later.sync()
    assert again.points_written == 0 and again.batches_skipped >= 1
    assert _count_points(postgres_url, run.id) == (1611, 1611)
    later.close()


def test_a_sigkilled_run_is_marked_killed_and_a_live_one_is_not(
    postgres_url: str, blobs: object, tmp_path: Path
) -> None:
    store = Store.open(postgres_url, create=True)
    store.close()
    project = tmp_path / "proj"
    project.mkdir()
    (project / "conveyor.toml").write_text(
        f'[store]\nmetadata_url = "{postgres_url}"\n'
        "[tracking]\nheartbeat_interval = 0.2\ncapture_git = false\ncapture_packages = false\n",
        encoding="utf-8",
    )
    code = """
        import time, conveyor
        run = conveyor.start_run(experiment="doomed")
        conveyor.log_metric("m", 1.0)
        print(run.id, flush=True)
        time.sleep(120)
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=project, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    doomed = proc.stdout.readline().strip()
    live_tracker = _tracker(postgres_url, blobs, None, beat=0.2)
    live = live_tracker.create_run("alive")
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()
    time.sleep(3.0)  # longer than stale_after below; the live run keeps beating meanwhile
    direct = Store.open(postgres_url)
    marked = mark_stale(direct, stale_after=2.0)
    assert [m.run_id for m in marked] == [doomed]
    with direct.read() as conn:
        dead = direct.runs.get(conn, doomed)
        assert dead.status is RunStatus.KILLED and dead.end_time is not None
        assert "no heartbeat" in (dead.error or "")
        assert direct.runs.get(conn, live.id).status is RunStatus.RUNNING
    direct.close()
    live_tracker.end_run(live.id)
    live_tracker.close()
