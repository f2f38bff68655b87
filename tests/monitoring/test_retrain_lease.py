"""The retraining lock is a lease: a holder that dies stops heartbeating and loses it.

Before, the lock row was cleared only by a clean finish: after a retraining process died
(``os._exit``) every later trigger was skipped as "already in flight", even forced, for
good. These tests kill a real retraining process with ``os._exit`` and check the lease
(holder shown, kept alive by heartbeats, taken over once expired), ``conveyor monitor
unlock``, the failure backoff (separate from the success cool-down) and the run ids.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conveyor.cli import app
from conveyor.monitoring import ContinuousTrainer, MonitorConfig, MonitorHooks, Monitoring, MonitoringDefaults
from conveyor.monitoring import RetrainOutcome
from conveyor.store import MonitoringRepo

runner = CliRunner()
repo = MonitoringRepo()

#: A retraining process: it starts a run tagged with its trigger (as the CLI's hook does),
#: says so, keeps running for HOLD seconds (heartbeating) and then dies without cleaning up.
DYING = textwrap.dedent('''
    import os, sys, time
    from conveyor.monitoring import ContinuousTrainer
    from conveyor.tracking import get_tracker

    lease, hold = float(sys.argv[1]), float(sys.argv[2])
    tracker = get_tracker()

    def hook(model, trigger_id):
        run = tracker.create_run("retrain", name="dying", tags={"conveyor.retrain_trigger": str(trigger_id)})
        print(json.dumps({"trigger": trigger_id, "run": run.id}), flush=True)
        time.sleep(hold)
        os._exit(17)  # no finally, no atexit, no lock release

    import json
    ContinuousTrainer(tracker, hook, cooldown=0, lease=lease).trigger("churn", "command")
''')


def _promote(model: str, trigger_id: int) -> RetrainOutcome:
    return RetrainOutcome(f"run-{trigger_id}", 2, True, "gate passed")


def _dying(folder: Path, lease: float, hold: float) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen([sys.executable, "-c", DYING, str(lease), str(hold)], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.stderr else ""
    return proc, json.loads(line)


def _tracker() -> Any:
    """A fresh tracker of the project (a closed remote tracker's HTTP client stays closed)."""
    from conveyor.tracking import get_tracker, set_tracker

    set_tracker(None)
    return get_tracker()


@pytest.mark.slow  # a subprocess and ~8 s of lease timing
def test_a_killed_retraining_loses_its_lease_and_the_next_trigger_runs(project: Path, stores: Any) -> None:
    lease = 2.0  # heartbeats every 0.67 s; the process lives 6 s, three leases
    proc, started = _dying(project, lease, hold=6.0)
    t = _tracker()
    trainer = ContinuousTrainer(t, _promote, cooldown=0, lease=lease, backoff=3600)

    blocked = trainer.trigger("churn", "command", force=True)  # a live lease: even force waits
    assert blocked.status == "skipped" and "already in flight" in blocked.decision
    assert f"trigger {started['trigger']} held by" in blocked.decision and f":{proc.pid}" in blocked.decision
    time.sleep(lease * 1.3)  # past the first lease: only the heartbeats keep it alive
    assert proc.poll() is None
    assert "already in flight" in trainer.trigger("churn", "command", force=True).decision

    assert proc.wait(30) == 17  # died with os._exit: the row still says running
    with stores.store.read() as conn:  # the lease row (the server's, in remote mode)
        held = repo.in_flight(conn, "churn")
    assert held is not None and held.status == "running" and held.holder and held.holder.endswith(f":{proc.pid}")
    assert held.heartbeat_at is not None and held.heartbeat_at > held.created_at  # it did heartbeat
    assert held.lease_until is not None
    time.sleep(max(0.0, (held.lease_until - time.time() * 1000) / 1000) + 0.2)

    # the lease has expired: an abandoned retraining counts as a failure, so a plain trigger
    # waits for the backoff, and --force (never allowed to break a live lease) now runs
    waiting = trainer.trigger("churn", "alert")
    assert waiting.status == "skipped" and waiting.decision.startswith("backoff"), waiting.decision
    forced = trainer.trigger("churn", "command", force=True)
    assert forced.status == "promoted", forced.decision
    dead = trainer.get(started["trigger"])
    assert dead.status == "abandoned" and "stopped heartbeating" in dead.decision
    assert dead.run_id == started["run"]  # found by the run's trigger tag
    assert dead.finished_at is not None
    t.close()


@pytest.mark.slow  # a subprocess
def test_monitor_unlock_releases_a_dead_holders_lock(project: Path) -> None:
    proc, started = _dying(project, lease=3600, hold=0.0)
    assert proc.wait(30) == 17
    t = _tracker()
    trainer = ContinuousTrainer(t, _promote, cooldown=0, lease=3600)
    still = trainer.trigger("churn", "command", force=True)
    assert "already in flight" in still.decision and "conveyor monitor unlock churn" in still.decision
    t.close()

    shown = runner.invoke(app, ["monitor", "history", "--show", "triggers", "--json"])
    held = next(r for r in json.loads(shown.output) if r["id"] == started["trigger"])
    assert held["status"] == "running" and held["holder"].endswith(f":{proc.pid}")  # the holder is shown

    result = runner.invoke(app, ["monitor", "unlock", "churn", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert row["id"] == started["trigger"] and row["status"] == "abandoned" and "unlocked by hand" in row["decision"]
    assert row["run_id"] == started["run"]
    again = runner.invoke(app, ["monitor", "unlock", "churn"])
    assert again.exit_code == 3 and "Traceback" not in again.output, again.output  # nothing left to unlock

    t = _tracker()
    assert ContinuousTrainer(t, _promote, cooldown=0).trigger("churn", "command", force=True).status == "promoted"
    t.close()


def test_an_expired_lease_is_taken_over_on_both_databases(tracker: Any, server_side: Any) -> None:
    with server_side.store.write() as conn:  # a holder that took the lease and never heartbeat again
        dead, _ = repo.start_trigger(conn, "churn", "schedule", None, holder="gone:1", lease_ms=50)
    trainer = ContinuousTrainer(tracker, _promote, cooldown=0, backoff=0)
    time.sleep(0.1)
    row = trainer.trigger("churn", "command")
    assert row.status == "promoted" and row.run_id == f"run-{row.id}"
    assert trainer.get(dead).status == "abandoned" and "gone:1" in trainer.get(dead).decision


def _age(tracker: Any, trigger_id: int, seconds: float) -> None:
    """Move a finished trigger ``seconds`` into the past (time passing, without sleeping)."""
    from sqlalchemy import update

    from conveyor.store._monitoring import retrain_triggers

    shift = int(seconds * 1000)
    with tracker.store.write() as conn:
        conn.execute(update(retrain_triggers).where(retrain_triggers.c.id == trigger_id).values(
            created_at=retrain_triggers.c.created_at - shift, finished_at=retrain_triggers.c.finished_at - shift))


def test_failure_backs_off_separately_from_the_success_cooldown(tracker: Any, server_side: Any) -> None:
    calls: list[int] = []

    def flaky(model: str, trigger_id: int) -> RetrainOutcome:
        calls.append(trigger_id)
        if len(calls) == 1:
            error = RuntimeError("feature store unreachable")
            error.run_id = "run-of-the-failure"  # type: ignore[attr-defined]
            raise error
        return _promote(model, trigger_id)

    trainer = ContinuousTrainer(tracker, flaky, cooldown=6 * 3600, backoff=600)
    failed = trainer.trigger("churn", "alert")
    assert failed.status == "failed" and failed.run_id == "run-of-the-failure"  # the failed run is recorded
    early = trainer.trigger("churn", "alert")
    assert early.status == "skipped" and early.decision.startswith("backoff"), early.decision  # not the 6 h cool-down
    assert not trainer.retry_due("churn", retries=3)
    _age(server_side, failed.id, 601)  # ten minutes later: the backoff is over, the cool-down would not be
    assert trainer.retry_due("churn", retries=3)
    retried = trainer.trigger("churn", "retry")
    assert retried.status == "promoted", retried.decision
    assert not trainer.retry_due("churn", retries=3)
    after = trainer.trigger("churn", "alert")
    assert after.status == "skipped" and after.decision.startswith("cool-down")  # success starts the cool-down
    assert len(calls) == 2
    assert trainer.backoff_for(1) == 600 and trainer.backoff_for(3) == 2400 and trainer.backoff_for(30) == 6 * 3600


def _window(make_frame: Any, shift: float, seed: int) -> Any:
    frame = make_frame(n=800, shift=shift, seed=seed)
    frame["prediction"] = (frame.age > 45).astype(int)
    frame["label"] = frame.pop("churned")
    return frame


def test_monitoring_retries_a_failed_retraining_after_the_backoff(tracker: Any, server_side: Any, make_frame: Any,
                                                                  monitor_config: Any) -> None:
    import conveyor.data

    conveyor.data.add(make_frame(seed=1), name="train", tracker=server_side)
    outcomes = iter([RuntimeError("out of memory"), _promote("churn", 0)])

    def hook(model: str, trigger_id: int) -> RetrainOutcome:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    defaults = MonitoringDefaults(retrain_backoff="10m", retrain_retries=1)
    monitoring = Monitoring(tracker, defaults, MonitorHooks(retrain=hook))
    config: MonitorConfig = monitor_config(retrain=True)
    drifted, calm = _window(make_frame, 1.0, 3), _window(make_frame, 0.0, 4)
    first = monitoring.evaluate(config, current=drifted)
    assert [t.status for t in first.triggers] == ["failed"]
    assert monitoring.evaluate(config, current=calm).triggers == ()  # no alert, backoff not over: nothing
    _age(server_side, first.triggers[0].id, 601)
    second = monitoring.evaluate(config, current=calm)  # no alert, but the failed one is retried
    assert [(t.reason, t.status) for t in second.triggers] == [("retry", "promoted")]
    assert monitoring.evaluate(config, current=calm).triggers == ()
