"""The metric buffer: ``log_metric`` appends to memory, a background thread writes batches.

Crash window: points logged in the last ``flush_interval`` seconds (default 1 s) are lost
if the process dies without running its exit handlers (SIGKILL, power loss). Run end,
``conveyor.flush()``, SIGTERM and a normal interpreter exit all flush.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from collections.abc import Callable, Sequence

from conveyor.errors import StorageError
from conveyor.store import Point

log = logging.getLogger("conveyor.tracking")

Writer = Callable[[Sequence[Point]], None]


class MetricBuffer:
    """Thread-safe buffer of metric points with a daemon writer thread.

    Example::

        buffer = MetricBuffer(writer=lambda points: print(len(points)), interval=1.0, batch_size=1000)
        buffer.add(("run", "loss", 0.3, 0, 1700000000000))
        buffer.flush()
    """

    def __init__(self, writer: Writer, *, interval: float, batch_size: int) -> None:
        self._writer = writer
        self._interval = interval
        self._batch_size = batch_size
        self._points: list[Point] = []
        self._lock = threading.Lock()  # guards _points
        self._write_lock = threading.Lock()  # one writer at a time, in order
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._warned = False  # a failing write was reported on stderr (once per failure streak)

    def add(self, point: Point) -> None:
        with self._lock:
            self._points.append(point)
            size = len(self._points)
        self._ensure_thread()
        if size >= self._batch_size:
            self._wake.set()

    def extend(self, points: Sequence[Point]) -> None:
        with self._lock:
            self._points.extend(points)
            size = len(self._points)
        self._ensure_thread()
        if size >= self._batch_size:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._points)

    def flush(self) -> None:
        """Write everything buffered now; a failure raises and the points stay buffered."""
        self._drain()

    def close(self) -> None:
        """Write what is left; points that still cannot be written are lost, and said so on
        stderr (close runs at interpreter exit too, where an exception helps nobody: the
        run's end has already raised, naming the points it kept)."""
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        try:
            self._drain()
        except StorageError as exc:
            lost = self.pending()
            with self._lock:
                self._points.clear()
            log.info("%s buffered metric point(s) lost: %s", lost, exc)
            _say(
                f"conveyor: error: {lost:,} buffered metric point(s) could not be written and are lost: "
                f"{exc.__cause__ or exc}"
            )

    def drain_into(self, write: Writer, *, always: bool = False) -> None:
        """Hand every buffered point to ``write`` (in order with the background writer); on
        failure the points go back in front of the buffer. ``always`` calls ``write`` even
        with nothing buffered (to do other work in the same transaction)."""
        with self._write_lock:
            with self._lock:
                points, self._points = self._points, []
            if not points and not always:
                return
            try:
                write(points)
            except BaseException as exc:
                with self._lock:  # put them back in front: nothing logged is dropped
                    self._points[:0] = points
                    kept = len(self._points)
                if isinstance(exc, OSError):  # StorageError, a full disk: say what is at stake
                    raise StorageError(
                        f"could not write {len(points):,} metric point(s): {exc}; "
                        f"{kept:,} point(s) are kept in memory and retried on the next flush",
                        hint="free disk space (or fix the store), then call conveyor.flush() or end the run again",
                    ) from exc
                raise
            if self._warned:
                self._warned = False
                _say(f"conveyor: buffered metrics written again ({len(points):,} point(s))")

    def _drain(self) -> None:
        self.drain_into(self._writer)

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._closed:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=_run, args=(weakref.ref(self),), name="conveyor-metrics", daemon=True
                    )
                    self._thread.start()

    def _loop_once(self) -> bool:
        self._wake.wait(self._interval)
        self._wake.clear()
        try:
            self._drain()
        except Exception as exc:  # the points stay buffered; the next flush retries and raises
            log.info("conveyor could not write metrics yet (will retry): %s", exc)
            if not self._warned:
                self._warned = True
                _say(f"conveyor: warning: {exc}")
        return not self._closed


def _say(line: str) -> None:
    """One line on stderr, whatever logging is configured: losing data must not be silent."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed at interpreter exit
        pass


def _run(ref: weakref.ReferenceType[MetricBuffer]) -> None:
    while True:
        buffer = ref()
        if buffer is None or not buffer._loop_once():
            return
        del buffer
