"""Heartbeats: a daemon thread marks the runs this process has open as alive.

A run whose process dies without ending it (SIGKILL, power loss, a node lost) stops
beating; ``find_stale``/``mark_stale`` (``conveyor runs gc-stale``) end every RUNNING run
whose last heartbeat is older than ``[tracking] stale_after`` as KILLED. Step runs of a
pipeline beat with their parent run. The same thread replays this process's spool once
the store answers again.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from conveyor.entities import now_ms
from conveyor.store import Store
from conveyor.tracking._spool import STALE_MARK

log = logging.getLogger("conveyor.tracking")


class Heartbeat:
    """Beats for a changing set of run ids every ``interval`` seconds.

    Example::

        beat = Heartbeat(store, interval=30.0)
        beat.add(run.id)        # starts the thread on first use
        beat.discard(run.id)    # the run ended
        beat.close()
    """

    def __init__(self, store: Store, *, interval: float, also: Callable[[], None] | None = None) -> None:
        self._store = store
        self._interval = interval
        self._also = also
        self._runs: set[str] = set()
        self._lock = threading.Lock()  # guards _runs and _thread
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, run_id: str) -> None:
        with self._lock:
            self._runs.add(run_id)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=_loop, args=(weakref.ref(self), self._stop, self._interval),
                    name="conveyor-heartbeat", daemon=True,
                )
                self._thread.start()

    def discard(self, run_id: str) -> None:
        with self._lock:
            self._runs.discard(run_id)

    def beat(self) -> None:
        with self._lock:
            ids = sorted(self._runs)
        if ids:
            self._store.transaction(lambda conn: self._store.runs.heartbeat(conn, ids), what="heartbeat")
        if self._also is not None:
            self._also()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)


def _loop(ref: weakref.ReferenceType[Heartbeat], stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        beat = ref()
        if beat is None:
            return
        try:
            beat.beat()
        except Exception as exc:  # the store is down: the next beat tries again
            log.warning("conveyor: heartbeat failed (will retry): %s", exc)
        del beat


@dataclass(frozen=True)
class StaleRun:
    run_id: str
    last_seen_ms: int


def find_stale(store: Store, stale_after: float) -> list[StaleRun]:
    cutoff = now_ms() - int(stale_after * 1000)
    with store.read() as conn:
        return [StaleRun(r, seen) for r, seen in store.runs.stale(conn, cutoff)]


def mark_stale(store: Store, stale_after: float) -> list[StaleRun]:
    """End every RUNNING run without a heartbeat for ``stale_after`` seconds as KILLED."""
    cutoff = now_ms() - int(stale_after * 1000)
    marked: list[StaleRun] = []
    for run in find_stale(store, stale_after):
        seen = datetime.fromtimestamp(run.last_seen_ms / 1000, tz=timezone.utc).isoformat(timespec="seconds")
        error = f"{STALE_MARK} since {seen} (its process died?); marked KILLED by `conveyor runs gc-stale`"
        if store.transaction(lambda conn, r=run.run_id, e=error: store.runs.mark_dead(conn, r, cutoff, e)):
            marked.append(run)
    return marked
