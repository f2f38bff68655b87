"""No hangs, and recovery commands: a server that accepts TCP and never answers (as the
metadata database, as a Ray cluster) is an exit code 4 naming the service, the address and
the setting; `conveyor runs gc-stale` ends dead runs; `conveyor sync` replays the spool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli import app
from conveyor.entities import RunStatus
from conveyor.errors import ServiceUnavailable
from conveyor.settings import Settings
from conveyor.tracking import Tracker
from fixtures.proxy import Blackhole, blackhole  # noqa: F401  (fixture)

runner = CliRunner()


def _cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    # the timeout is a hang guard for the test run, not a measurement
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args], cwd=cwd, env={**base, **env},
        capture_output=True, text=True, timeout=60,
    )


def test_a_database_that_never_answers_is_exit_4_naming_address_and_setting(
    blackhole: Blackhole, tmp_path: Path
) -> None:
    url = f"postgresql://conveyor:s3cret-pw@{blackhole.address}/conveyor"
    done = _cli(tmp_path, {"CONVEYOR_STORE_METADATA_URL": url}, "runs", "list")
    assert done.returncode == 4, done.stderr
    err = " ".join(done.stderr.split())
    assert blackhole.address in err and "metadata store" in err
    assert "CONVEYOR_STORE_CONNECT_TIMEOUT" in err and "connect_timeout" in err
    assert "s3cret-pw" not in done.stderr + done.stdout  # the password is never printed
    assert "Traceback" not in done.stderr


def test_a_ray_address_that_never_answers_is_a_clear_error(blackhole: Blackhole, tmp_path: Path) -> None:
    from conveyor.pipelines._executors import make_executor

    settings = Settings.load(tmp_path, env={"CONVEYOR_RAY_CONNECT_TIMEOUT": "1.5"})
    with pytest.raises(ServiceUnavailable) as info:
        make_executor("ray", ray_address=blackhole.address, settings=settings)
    message = str(info.value)
    assert blackhole.address in message and "1.5 s" in message
    assert "CONVEYOR_RAY_CONNECT_TIMEOUT" in message


def test_a_port_that_speaks_something_else_is_not_a_ray_cluster(tmp_path: Path) -> None:
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def answer() -> None:
        conn, _ = server.accept()
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    from conveyor.pipelines._executors import make_executor

    address = f"127.0.0.1:{server.getsockname()[1]}"
    with pytest.raises(ServiceUnavailable, match="not a Ray cluster"):
        make_executor("ray", ray_address=address, settings=Settings.load(tmp_path, env={}))
    server.close()


def test_runs_gc_stale_ends_a_run_whose_process_is_gone(project: Path) -> None:
    settings = Settings.load(project, env={"CONVEYOR_TRACKING_HEARTBEAT_INTERVAL": "0.2"})
    tracker = Tracker.from_settings(settings)
    dead = tracker.create_run("gc", name="dead").id
    tracker.close()  # the process "dies": no end, no more heartbeats
    live_tracker = Tracker.from_settings(settings)
    live = live_tracker.create_run("gc", name="live").id
    time.sleep(1.5)
    result = runner.invoke(app, ["runs", "gc-stale", "--stale-after", "1", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    assert [r["run_id"] for r in json.loads(result.output)] == [dead]
    assert live_tracker.get_run(dead).status is RunStatus.RUNNING  # a dry run changes nothing
    result = runner.invoke(app, ["runs", "gc-stale", "--stale-after", "1"])
    assert result.exit_code == 0, result.output
    assert "marked KILLED" in result.output
    assert live_tracker.get_run(dead).status is RunStatus.KILLED
    assert live_tracker.get_run(live).status is RunStatus.RUNNING
    live_tracker.end_run(live)
    live_tracker.close()


def test_sync_replays_a_spool_left_by_a_dead_process(project: Path) -> None:
    from conveyor.tracking._spool import Spool

    settings = Settings.load(project, env={})
    tracker = Tracker.from_settings(settings)
    run = tracker.create_run("sync")
    spool = Spool(settings.spool_dir, tracker.store)
    spool.add_metrics("b" * 32, [(run.id, "m", float(i), i, 1_700_000_000_000 + i) for i in range(50)])
    spool.add_end(run.id, RunStatus.FAILED, "out of memory")
    spool._handle.close()  # type: ignore[union-attr]  # the writer died: its lock is gone with it
    with open(spool.path, "a", encoding="utf-8") as torn:
        torn.write('{"kind": "metrics", "batch": "x", "poi')  # a crash mid-append
    result = runner.invoke(app, ["sync", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["points_written"] == 50 and report["runs_ended"] == 1
    assert not spool.path.exists()
    assert len(tracker.metric_history(run.id, "m")) == 50
    ended = tracker.get_run(run.id)
    assert ended.status is RunStatus.FAILED and ended.error == "out of memory"
    tracker.close()
