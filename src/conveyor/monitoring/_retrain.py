"""Continuous training: a trigger runs the training pipeline, its candidate goes through
the gates and is promoted only if they pass.

Pipelines and gates live beside monitoring in the layer map, so the work itself is a hook
(``RetrainHook``) that the edges wire (``conveyor.cli`` and the quickstart call
``conveyor.pipelines.run`` then ``conveyor.gates.promote``). This module owns the
policy: a cool-down between retrainings of a model, at most one in flight (a unique lock
row in the store), and a record of every trigger and decision — skipped (why), promoted,
rejected by the gates, or failed (the champion stays and an alert says so).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conveyor.entities import now_ms
from conveyor.errors import Conflict
from conveyor.store import MonitoringRepo, TriggerRow

log = logging.getLogger("conveyor.monitoring")
REASONS = ("alert", "schedule", "new_data", "command")


@dataclass(frozen=True)
class RetrainOutcome:
    """What the training pipeline and the gates did with one trigger."""

    run_id: str | None
    candidate_version: int | None
    promoted: bool
    decision: str


#: ``hook(model, trigger_id)`` trains on the newest data, gates and maybe promotes.
RetrainHook = Callable[[str, int], RetrainOutcome]


class ContinuousTrainer:
    """Apply the retraining policy around a ``RetrainHook``.

    Example::

        trainer = ContinuousTrainer(tracker, hook, cooldown=6 * 3600)
        trainer.trigger("churn", "alert", alert_id=12)   # → TriggerRow(status="promoted", …)
    """

    def __init__(self, tracker: Any, hook: RetrainHook | None, *, cooldown: float = 6 * 3600,
                 on_failure: Callable[[str, str, int], None] | None = None) -> None:
        self.tracker, self.hook, self.cooldown = tracker, hook, cooldown
        self.on_failure = on_failure
        self.repo = MonitoringRepo()
        self._threads: list[threading.Thread] = []

    def trigger(self, model: str, reason: str, *, alert_id: int | None = None, force: bool = False,
                background: bool = False) -> TriggerRow:
        """Start a retraining of ``model`` unless the cool-down or one in flight forbids it.

        ``force`` skips the cool-down (never the one-in-flight rule). With ``background`` the
        pipeline runs on a thread and the returned row is the running trigger.
        """
        store = self.tracker.store
        if self.hook is None:
            return self._skip(model, reason, alert_id, "no retraining hook is configured (set retrain and pipeline "
                              "on the monitor, or pass a hook)")
        with store.write() as conn:
            last = self.repo.last_started(conn, model)
            if not force and last is not None and now_ms() - last < self.cooldown * 1000:
                ago = (now_ms() - last) / 1000
                decision = f"cool-down: the last retraining started {ago:.0f}s ago, cool-down is {self.cooldown:.0f}s"
                return self._skip(model, reason, alert_id, decision, conn)
            try:
                trigger_id = self.repo.start_trigger(conn, model, reason, alert_id)
            except Conflict as exc:
                return self._skip(model, reason, alert_id, exc.message, conn)
        if background:
            thread = threading.Thread(target=self._run, args=(model, trigger_id), daemon=True,
                                      name=f"conveyor-retrain-{trigger_id}")
            thread.start()
            self._threads.append(thread)
            return self.get(trigger_id)
        return self._run(model, trigger_id)

    def _run(self, model: str, trigger_id: int) -> TriggerRow:
        assert self.hook is not None
        try:
            outcome = self.hook(model, trigger_id)
        except Exception as exc:  # any failure of the user's pipeline: record it, keep the champion
            decision = f"retraining failed: {type(exc).__name__}: {exc}; the champion stays"
            log.error("retraining of %s (trigger %s) failed: %s", model, trigger_id, exc)
            with self.tracker.store.write() as conn:
                self.repo.finish_trigger(conn, trigger_id, "failed", decision)
            if self.on_failure is not None:
                self.on_failure(model, decision, trigger_id)
            return self.get(trigger_id)
        status = "promoted" if outcome.promoted else "rejected"
        with self.tracker.store.write() as conn:
            self.repo.finish_trigger(conn, trigger_id, status, outcome.decision, run_id=outcome.run_id,
                                     candidate_version=outcome.candidate_version)
        log.warning("retraining of %s (trigger %s): %s", model, trigger_id, outcome.decision)
        return self.get(trigger_id)

    def _skip(self, model: str, reason: str, alert_id: int | None, decision: str, conn: Any = None) -> TriggerRow:
        if conn is None:
            with self.tracker.store.write() as conn:
                trigger_id = self.repo.record_skip(conn, model, reason, alert_id, decision)
        else:
            trigger_id = self.repo.record_skip(conn, model, reason, alert_id, decision)
        log.info("retraining of %s skipped: %s", model, decision)
        return TriggerRow(trigger_id, model, reason, alert_id, "skipped", None, None, decision, now_ms(), now_ms())

    def get(self, trigger_id: int) -> TriggerRow:
        with self.tracker.store.read() as conn:
            return self.repo.get_trigger(conn, trigger_id)

    def wait(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)
