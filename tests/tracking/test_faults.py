"""Crashes, kills and concurrent writers: nothing half-written, nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conveyor.entities import RunStatus
from conveyor.settings import Settings
from conveyor.store import doctor
from conveyor.tracking import Tracker


def _python(code: str, cwd: Path, **kwargs: object) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs,  # type: ignore[call-overload]
    )


def _tracker(folder: Path) -> Tracker:
    return Tracker.from_settings(Settings.load(folder, env={}))


def test_four_processes_logging_at_once_lose_nothing(project: Path) -> None:
    _tracker(project).close()  # create the store once, as `conveyor init` would
    code = """
        import sys, conveyor
        with conveyor.start_run(experiment="parallel", name=sys.argv[1]):
            for step in range(10_000):
                conveyor.log_metric("loss", 1.0 / (step + 1), step=step)
                if step % 2500 == 0:
                    conveyor.log_metrics({"a": step, "b": step})
    """
    procs = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), f"w{i}"], cwd=project,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    tracker = _tracker(project)
    runs = tracker.search_runs("parallel", output="runs")
    assert sorted(r.name for r in runs) == ["w0", "w1", "w2", "w3"]
    for run in runs:
        assert run.status is RunStatus.FINISHED
        assert len(tracker.metric_history(run.id, "loss")) == 10_000
        assert len(tracker.metric_history(run.id, "a")) == 4
    tracker.close()


def test_exit_without_ending_the_run_flushes_everything(project: Path) -> None:
    code = """
        import conveyor
        run = conveyor.start_run(experiment="exit")
        for step in range(3000):
            conveyor.log_metric("m", step, step=step)
        print(run.id)
    """
    proc = _python(code, project)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    tracker = _tracker(project)
    run = tracker.get_run(out.strip())
    assert run.status is RunStatus.FINISHED
    assert len(tracker.metric_history(run.id, "m")) == 3000
    tracker.close()


def test_sigterm_ends_the_run_killed_with_its_metrics(project: Path) -> None:
    code = """
        import time, conveyor
        with conveyor.start_run(experiment="term") as run:
            for step in range(500):
                conveyor.log_metric("m", step, step=step)
            print(run.id, flush=True)
            time.sleep(60)
    """
    proc = _python(code, project)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGTERM  # the signal still ends the process as usual
    tracker = _tracker(project)
    run = tracker.get_run(run_id)
    assert run.status is RunStatus.KILLED
    assert len(tracker.metric_history(run_id, "m")) == 500
    tracker.close()


def test_sigkill_while_writing_a_large_artifact_leaves_nothing_visible(embedded_only: None, project: Path) -> None:
    # the artifact store's own writer; remote mode's counterpart (a server killed mid-upload)
    # is tests/server/test_remote_faults.py
    tracker = _tracker(project)
    code = """
        import conveyor
        class Slow:
            def __init__(self):
                self.sent = 0
            def read(self, n=-1):
                import time
                if self.sent > 64 * 1024 * 1024:
                    time.sleep(0.05)
                self.sent += 1 << 20
                if self.sent == 65 << 20:
                    print("writing", flush=True)
                return b"x" * (1 << 20)
        with conveyor.start_run(experiment="kill") as run:
            tracker = conveyor.tracking.get_tracker()
            blob = tracker.blobs.put_stream(Slow())   # never finishes
    """
    proc = _python(code, project)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    tmp = Path(tracker.blobs._backend.root) / ".tmp"  # type: ignore[attr-defined]
    deadline = time.time() + 30
    while time.time() < deadline and not any(p.stat().st_size > 32 << 20 for p in tmp.glob("*")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    report = doctor(tracker.store, tracker.blobs)
    assert report.healthy and report.missing == [] and report.corrupt == []
    for digest in tracker.blobs.iter_digests():
        assert tracker.blobs.verify(digest)
    runs = tracker.search_runs("kill", output="runs")
    assert len(runs) == 1 and tracker.list_artifacts(runs[0].id) == []
    tracker.close()


@pytest.mark.parametrize("interval", [0.05])
def test_background_writer_keeps_points_when_the_store_fails(project: Path, interval: float) -> None:
    from conveyor.tracking._buffer import MetricBuffer

    written: list[object] = []
    fail = {"on": True}

    def writer(points: object) -> None:
        if fail["on"]:
            raise RuntimeError("database is down")
        written.extend(points)  # type: ignore[arg-type]

    buffer = MetricBuffer(writer, interval=interval, batch_size=10)
    for i in range(25):
        buffer.add(("r", "m", float(i), i, i))
    with pytest.raises(RuntimeError, match="down"):
        buffer.flush()
    fail["on"] = False
    buffer.flush()
    buffer.close()
    assert [p[3] for p in written] == list(range(25))  # type: ignore[index]
