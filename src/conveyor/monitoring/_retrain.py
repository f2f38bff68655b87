"""Continuous training: a trigger runs the training pipeline, its candidate goes through
the gates and is promoted only if they pass.

Pipelines and gates live beside monitoring in the layer map, so the work itself is a hook
(``RetrainHook``) that the edges wire (``conveyor.cli`` and the quickstart call
``conveyor.pipelines.run`` then ``conveyor.gates.promote``). This module owns the
policy and records every trigger and decision — skipped (why), promoted, rejected by the
gates, failed (the champion stays and an alert says so) or abandoned:

* **one in flight** per model: a lease row in the store (``MonitoringRepo.start_trigger``)
  that names its holder (host:pid) and is kept alive by a heartbeat thread while the hook
  runs (every ``lease / 3`` seconds). If the process dies — ``os._exit``, SIGKILL, a lost
  machine — the heartbeats stop and, ``lease`` seconds later, the next trigger marks the
  dead one ``abandoned`` and runs; ``conveyor monitor unlock MODEL`` does it at once.
  ``force`` never breaks a live lease.
* **cool-down** after a completed retraining (promoted or rejected): no new one for
  ``cooldown`` seconds (``force`` skips it).
* **backoff** after a failed or abandoned one, separate from the cool-down: the next may
  start ``backoff · 2^(k−1)`` seconds (capped at the cool-down) after the k-th failure in
  a row, and ``Monitoring`` retries by itself (reason ``retry``) up to ``retries`` times.
* the **run id** of every retraining is recorded, failed ones included: from the outcome,
  from a ``run_id`` attribute of the hook's exception, or else from the run tagged
  ``conveyor.retrain_trigger = <trigger id>`` (how the CLI's hook tags its pipeline run).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conveyor.entities import now_ms
from conveyor.errors import Conflict, ConveyorError
from conveyor.store import MonitoringRepo, TriggerRow

log = logging.getLogger("conveyor.monitoring")
REASONS = ("alert", "schedule", "new_data", "command", "retry")
#: The tag a retraining's pipeline run carries, with the trigger id as value.
TRIGGER_TAG = "conveyor.retrain_trigger"


@dataclass(frozen=True)
class RetrainOutcome:
    """What the training pipeline and the gates did with one trigger."""

    run_id: str | None
    candidate_version: int | None
    promoted: bool
    decision: str


#: ``hook(model, trigger_id)`` trains on the newest data, gates and maybe promotes.
RetrainHook = Callable[[str, int], RetrainOutcome]


def default_holder() -> str:
    """``host:pid``, the name a lease shows for this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ContinuousTrainer:
    """Apply the retraining policy around a ``RetrainHook``.

    Example::

        trainer = ContinuousTrainer(tracker, hook, cooldown=6 * 3600, lease=300, backoff=300)
        trainer.trigger("churn", "alert", alert_id=12)   # → TriggerRow(status="promoted", …)
    """

    def __new__(cls, tracker: Any, *args: Any, **kwargs: Any) -> ContinuousTrainer:
        """A :class:`conveyor.monitoring._remote.RemoteTrainer` when ``tracker`` talks to a
        ``conveyor server``: the lease lives in the server's stores, the hook runs here."""
        if cls is ContinuousTrainer and getattr(tracker, "http", None) is not None:
            from conveyor.monitoring._remote import RemoteTrainer

            return object.__new__(RemoteTrainer)
        return object.__new__(cls)

    def __init__(self, tracker: Any, hook: RetrainHook | None, *, cooldown: float = 6 * 3600,
                 on_failure: Callable[[str, str, int], None] | None = None, lease: float = 300.0,
                 backoff: float = 300.0, holder: str | None = None) -> None:
        self.tracker, self.hook, self.cooldown = tracker, hook, cooldown
        self.on_failure = on_failure
        self.lease, self.backoff = lease, backoff
        self.holder = holder or default_holder()
        self.repo = MonitoringRepo()
        self._threads: list[threading.Thread] = []

    def backoff_for(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed retrainings in a row."""
        if failures <= 0:
            return 0.0
        return min(self.backoff * 2 ** (failures - 1), max(self.cooldown, self.backoff))

    def trigger(self, model: str, reason: str, *, alert_id: int | None = None, force: bool = False,
                background: bool = False) -> TriggerRow:
        """Start a retraining of ``model`` unless the cool-down, the backoff or a live lease forbids it.

        ``force`` skips the cool-down and the backoff (never a live lease). With ``background``
        the pipeline runs on a thread and the returned row is the running trigger.
        """
        if self.hook is None:
            return self._skip(model, reason, alert_id, "no retraining hook is configured (set retrain and pipeline "
                              "on the monitor, or pass a hook)")
        row = self._start(model, reason, alert_id, force)
        if row.status != "running":
            return row
        if background:
            thread = threading.Thread(target=self._run, args=(model, row.id), daemon=True,
                                      name=f"conveyor-retrain-{row.id}")
            thread.start()
            self._threads.append(thread)
            return self.get(row.id)
        return self._run(model, row.id)

    # -- the lease's store primitives (a remote trainer sends them to the server instead) ------------
    def _start(self, model: str, reason: str, alert_id: int | None, force: bool) -> TriggerRow:
        """Reap a dead holder's lease, then take the lease (a ``running`` row) or record a skip."""
        store = self.tracker.store
        # each transaction is retried through a database blink, once: a retry after a lost
        # COMMIT acknowledgement returns the first attempt's ids instead of adding rows again
        reaped_id = store.transaction(
            lambda conn: _id_of(self.repo.reap_expired(conn, model)),  # a dead holder's retraining counts as failed
            once=True, what="reaping an expired retraining lock")
        if reaped_id is not None:
            self._record_abandoned(self.get(reaped_id))

        def start(conn: Any) -> dict[str, Any]:
            wait = None if force else self._wait(conn, model)
            if wait is None:
                try:
                    trigger_id, abandoned = self.repo.start_trigger(conn, model, reason, alert_id, holder=self.holder,
                                                                    lease_ms=int(self.lease * 1000))
                    return {"trigger": trigger_id, "abandoned": _id_of(abandoned)}
                except Conflict as exc:
                    wait = f"{exc.message}; {exc.hint}" if exc.hint else exc.message
            return {"skipped": self.repo.record_skip(conn, model, reason, alert_id, wait), "decision": wait}

        started = store.transaction(start, once=True, what="starting a retraining")
        if "skipped" in started:
            return self._skipped(started["skipped"], model, reason, alert_id, started["decision"])
        if started["abandoned"] is not None:  # expired between the two transactions
            self._record_abandoned(self.get(started["abandoned"]))
        return self.get(started["trigger"])

    def _finish(self, trigger_id: int, status: str, decision: str, run_id: str | None,
                candidate_version: int | None = None) -> None:
        # retried through a database blink (setting the final status again is a no-op)
        self.tracker.store.transaction(
            lambda conn: self.repo.finish_trigger(conn, trigger_id, status, decision, run_id=run_id,
                                                  candidate_version=candidate_version),
            what=f"recording a retraining's outcome ({status})")

    def _beat(self, trigger_id: int) -> bool:
        """Push the lease forward once; False when this trigger no longer holds it."""
        with self.tracker.store.write() as conn:
            return bool(self.repo.heartbeat(conn, trigger_id, int(self.lease * 1000)))

    def _wait(self, conn: Any, model: str) -> str | None:
        """Why ``model`` may not retrain yet (cool-down or backoff), or None."""
        now = now_ms()
        last = self.repo.last_started(conn, model, statuses=("promoted", "rejected"))
        if last is not None and now - last < self.cooldown * 1000:
            return (f"cool-down: the last completed retraining started {(now - last) / 1000:.0f}s ago, "
                    f"cool-down is {self.cooldown:.0f}s")
        failures, failed_at = self.repo.failure_streak(conn, model)
        pause = self.backoff_for(failures)
        if failures and failed_at is not None and now - failed_at < pause * 1000:
            return (f"backoff: {failures} retraining(s) in a row failed, the last {(now - failed_at) / 1000:.0f}s "
                    f"ago; the next may start after {pause:.0f}s")
        return None

    def retry_due(self, model: str, retries: int) -> bool:
        """True when ``model``'s newest retraining failed, at most ``retries`` failed in a row,
        and the backoff has passed: ``Monitoring`` then triggers with reason ``retry``."""
        failures, failed_at = self.tracker.store.query(lambda conn: self.repo.failure_streak(conn, model),
                                                       what=f"reading the retraining failures of {model!r}")
        if not failures or failures > retries or failed_at is None:
            return False
        return now_ms() - failed_at >= self.backoff_for(failures) * 1000

    def _run(self, model: str, trigger_id: int) -> TriggerRow:
        assert self.hook is not None
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(trigger_id, stop), daemon=True,
                                name=f"conveyor-retrain-heartbeat-{trigger_id}")
        beat.start()
        try:
            outcome = self.hook(model, trigger_id)
        except Exception as exc:  # any failure of the user's pipeline: record it, keep the champion
            decision = f"retraining failed: {type(exc).__name__}: {exc}; the champion stays"
            log.error("retraining of %s (trigger %s) failed: %s", model, trigger_id, exc)
            run_id = getattr(exc, "run_id", None) or self._tagged_run(trigger_id)
            self._finish(trigger_id, "failed", decision, run_id)
            if self.on_failure is not None:
                self.on_failure(model, decision, trigger_id)
            return self.get(trigger_id)
        finally:
            stop.set()
            beat.join()
        status = "promoted" if outcome.promoted else "rejected"
        run_id = outcome.run_id or self._tagged_run(trigger_id)
        self._finish(trigger_id, status, outcome.decision, run_id, outcome.candidate_version)
        log.warning("retraining of %s (trigger %s): %s", model, trigger_id, outcome.decision)
        return self.get(trigger_id)

    def _heartbeat(self, trigger_id: int, stop: threading.Event) -> None:
        """Push the lease forward every ``lease / 3`` seconds until ``stop`` is set."""
        while not stop.wait(self.lease / 3):
            try:
                held = self._beat(trigger_id)
            except ConveyorError as exc:  # store briefly unreachable: try again at the next beat
                log.warning("retraining trigger %s: heartbeat failed: %s", trigger_id, exc)
                continue
            if not held:
                log.warning("retraining trigger %s lost its lease (unlocked by hand or expired); it runs on, "
                            "but another retraining may start", trigger_id)
                return

    def _tagged_run(self, trigger_id: int) -> str | None:
        """The run tagged with this trigger (top-level first), if the hook made one."""
        try:
            runs = self.tracker.search_runs(filter=f"tags.`{TRIGGER_TAG}` = '{trigger_id}'", output="runs")
        except (ConveyorError, AttributeError):
            return None
        runs = sorted(runs, key=lambda r: (r.parent_id is not None, -r.start_time))
        return runs[0].id if runs else None

    def _record_abandoned(self, row: TriggerRow) -> None:
        run_id = row.run_id or self._tagged_run(row.id)
        if run_id and not row.run_id:
            self.tracker.store.transaction(lambda conn: self.repo.set_trigger_run(conn, row.id, run_id),
                                           what="linking a retraining to its run")
        log.error("retraining of %s (trigger %s) %s", row.model, row.id, row.decision)
        if self.on_failure is not None:
            self.on_failure(row.model, row.decision, row.id)

    def unlock(self, model: str, *, by: str | None = None) -> TriggerRow:
        """Release ``model``'s retraining lock by hand; the held trigger becomes ``abandoned``."""
        row_id = self.tracker.store.transaction(
            lambda conn: self.repo.unlock(conn, model, by or default_holder()).id,
            once=True, what="unlocking a retraining")
        row = self.get(row_id)
        self._record_abandoned(row)
        return self.get(row.id)

    def _skip(self, model: str, reason: str, alert_id: int | None, decision: str) -> TriggerRow:
        trigger_id = self.tracker.store.transaction(
            lambda conn: self.repo.record_skip(conn, model, reason, alert_id, decision),
            once=True, what="recording a skipped retraining")
        return self._skipped(trigger_id, model, reason, alert_id, decision)

    def _skipped(self, trigger_id: int, model: str, reason: str, alert_id: int | None, decision: str) -> TriggerRow:
        log.info("retraining of %s skipped: %s", model, decision)
        return TriggerRow(trigger_id, model, reason, alert_id, "skipped", None, None, decision, now_ms(), now_ms())

    def get(self, trigger_id: int) -> TriggerRow:
        return self.tracker.store.query(  # type: ignore[no-any-return]
            lambda conn: self.repo.get_trigger(conn, trigger_id), what=f"reading retraining trigger {trigger_id}")

    def wait(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)


def _id_of(row: TriggerRow | None) -> int | None:
    return None if row is None else row.id
