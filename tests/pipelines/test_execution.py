"""Running pipelines: child runs, failures that stop only their downstream, retries,
timeouts, captured logs, resuming, concurrent runs and a coordinator killed mid-step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from conveyor.entities import RunStatus
from conveyor.pipelines import run

FLOW = """
import os, sys
from pathlib import Path

@step
def source() -> list:
    print("to stdout")
    print("to stderr", file=sys.stderr)
    os.system("echo from-a-subprocess")
    return [1, 2, 3]

@step
def broken(rows: list) -> list:
    if not Path(os.environ.get("FIXED_MARKER", "/nonexistent")).exists():
        raise ValueError("bad rows: " + str(len(rows)))
    return rows

@step
def after_broken(rows: list) -> int:
    return len(rows)

@step
def independent(rows: list) -> int:
    return sum(rows)

@pipeline
def flow():
    rows = source()
    after_broken(broken(rows))
    independent(rows)
"""


def test_a_failed_step_stops_its_downstream_and_nothing_else(pipes: Any, local_tracker: Any) -> None:
    result = run(pipes(FLOW).flow, tracker=local_tracker)
    assert not result.ok
    statuses = {n: s.status for n, s in result.steps.items()}
    assert statuses == {"source": "FINISHED", "broken": "FAILED", "after_broken": "SKIPPED", "independent": "FINISHED"}
    assert "ValueError: bad rows: 3" in result.steps["broken"].error
    failed = local_tracker.get_run(result.steps["broken"].run_id)
    assert failed.status == RunStatus.FAILED
    assert "Traceback" in failed.error and "bad rows" in failed.error
    parent = local_tracker.get_run(result.run_id)
    assert parent.status == RunStatus.FAILED and "broken" in parent.error


def test_logs_are_captured_as_an_artifact(pipes: Any, local_tracker: Any) -> None:
    result = run(pipes(FLOW).flow, tracker=local_tracker)
    text = local_tracker.read_artifact(result.steps["source"].run_id, "logs/step.log").decode()
    assert "to stdout" in text and "to stderr" in text and "from-a-subprocess" in text
    outputs = local_tracker.list_artifacts(result.steps["source"].run_id, "outputs")
    assert [a.path for a in outputs] == ["outputs/output"] and outputs[0].is_dir


def test_running_again_resumes_from_the_cache(
    pipes: Any, local_tracker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = pipes(FLOW)
    run(module.flow, tracker=local_tracker)
    marker = tmp_path / "fixed"
    marker.touch()
    monkeypatch.setenv("FIXED_MARKER", str(marker))
    again = run(module.flow, tracker=local_tracker)
    assert again.ok
    assert sorted(again.cached) == ["independent", "source"]


def test_retries_then_success(pipes: Any, local_tracker: Any, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    module = pipes(f"""
        from pathlib import Path

        @step(retries=2)
        def flaky() -> int:
            path = Path({str(counter)!r})
            n = int(path.read_text()) + 1 if path.exists() else 1
            path.write_text(str(n))
            if n < 3:
                raise RuntimeError(f"attempt {{n}} failed")
            return n

        @pipeline
        def flow():
            flaky()
    """)
    result = run(module.flow, tracker=local_tracker)
    assert result.ok and result.steps["flaky"].attempts == 3
    assert local_tracker.get_run(result.steps["flaky"].run_id).tags["conveyor.attempts"] == "3"


def test_a_timeout_stops_the_step(pipes: Any, local_tracker: Any) -> None:
    module = pipes("""
        import time

        @step(timeout=1)
        def slow() -> int:
            time.sleep(60)
            return 1

        @step
        def quick() -> int:
            return 2

        @pipeline
        def flow():
            slow()
            quick()
    """)
    result = run(module.flow, tracker=local_tracker)
    assert result.steps["slow"].status == "FAILED" and "timeout of 1 s" in result.steps["slow"].error
    assert result.steps["quick"].status == "FINISHED"


def test_unmaterializable_output_names_type_and_fix(pipes: Any, local_tracker: Any) -> None:
    module = pipes("""
        class Opaque:
            pass

        @step
        def make() -> object:
            return Opaque()

        @pipeline
        def flow():
            make()
    """)
    error = run(module.flow, tracker=local_tracker).steps["make"].error
    assert "Opaque" in error and "register_materializer" in error


def test_multiple_outputs_and_metrics(pipes: Any, local_tracker: Any) -> None:
    module = pipes("""
        import numpy as np

        @step(outputs=("left", "right"))
        def split() -> tuple:
            return np.arange(4), np.arange(4, 8)

        @step(metrics=True)
        def score(left, right) -> dict:
            return {"sum": float(left.sum() + right.sum())}

        @pipeline
        def flow():
            left, right = split()
            score(left, right)
    """)
    result = run(module.flow, tracker=local_tracker)
    assert result.ok
    assert list(result.load("split", "right")) == [4, 5, 6, 7]
    assert local_tracker.get_run(result.run_id).metrics["sum"] == 28.0
    cached = run(module.flow, tracker=local_tracker)
    assert local_tracker.get_run(cached.run_id).metrics["sum"] == 28.0  # logged from the cache too


def _script(folder: Path, module_name: str, body: str) -> Path:
    path = folder / f"drive_{module_name}.py"
    path.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(folder)!r})
        import conveyor.pipelines as cp
        import {module_name} as m
        {body}
    """))
    return path


def test_two_pipeline_runs_at_once_both_succeed(pipes: Any, project: Path) -> None:
    module = pipes("""
        import time

        @step
        def first(tag: str) -> str:
            time.sleep(0.5)
            return tag

        @step
        def second(x: str) -> str:
            return x + "!"

        @pipeline
        def flow(tag: str = "a"):
            second(first(tag))
    """)
    folder = module.__conveyor_folder__
    script = _script(folder, module.__name__, "r = cp.run(m.flow, params={'tag': sys.argv[1]}, max_workers=1)\n"
                     "        print({n: s.error for n, s in r.steps.items()}, file=sys.stderr)\n"
                     "        sys.exit(0 if r.ok else 1)")
    procs = [
        subprocess.Popen([sys.executable, str(script), tag], cwd=project, stderr=subprocess.PIPE, text=True)
        for tag in ("a", "b")
    ]
    outcomes = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outcomes]


def test_sigkill_mid_step_then_the_next_run_resumes(pipes: Any, project: Path, tmp_path: Path) -> None:
    started = tmp_path / "started"
    module = pipes(f"""
        import os, time
        from pathlib import Path

        @step
        def cheap() -> list:
            return [1, 2]

        @step
        def long(rows: list) -> int:
            Path({str(started)!r}).touch()
            if not os.environ.get("FAST"):
                time.sleep(120)
            return sum(rows)

        @pipeline
        def flow():
            long(cheap())
    """)
    folder = module.__conveyor_folder__
    script = _script(folder, module.__name__, "r = cp.run(m.flow)\n        sys.exit(0 if r.ok else 1)")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=project, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the coordinator and its step processes
        proc.wait(30)
    env = {**os.environ, "FAST": "1"}
    again = subprocess.run(
        [sys.executable, str(script)], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    from conveyor.tracking import get_tracker

    tracker = get_tracker()
    with tracker.store.read() as conn:
        from conveyor.store import PipelineRepo

        runs = PipelineRepo().list_runs(conn)
        latest, killed = runs[0], runs[1]
        steps = {e.step: e for e in PipelineRepo().executions_of(conn, latest.run_id)}
        killed_steps = {e.step: e for e in PipelineRepo().executions_of(conn, killed.run_id)}
    assert killed_steps["long"].status == "RUNNING" and not killed_steps["long"].outputs
    assert steps["cheap"].cached and not steps["long"].cached and steps["long"].status == "FINISHED"
