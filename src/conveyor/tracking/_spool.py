"""The spool: writes that could not reach the metadata store, kept on local disk for a replay.

When the metadata store stays unreachable past ``[store] retry_seconds``, the tracker
appends the metric batch (with its batch id) or the run end to an append-only JSON-lines
file in ``[tracking] spool_dir`` and fsyncs it, so the training goes on and nothing logged is
lost. The owning process replays its file as soon as the store answers again; a file left
by a process that died is replayed by the next tracker opened on the same store, or by
``conveyor sync``. Replays are idempotent: a batch id already in ``metric_batches`` is not
written again, and a run end only ends a run that is still RUNNING (or that
``runs gc-stale`` marked KILLED for want of a heartbeat).

One file per process, named after the store (a hash of its URL without password), the
pid and a random part; the owner holds an exclusive ``flock`` on it while it lives, so a
replayer never deletes a file someone is still appending to. A torn last line (a crash
mid-append) is skipped.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import update

from conveyor.entities import RunStatus, now_ms
from conveyor.store import Point, Store, runs

log = logging.getLogger("conveyor.tracking")

#: The ``error`` text ``runs gc-stale`` writes; a spooled run end may overwrite such a mark.
STALE_MARK = "no heartbeat"


def store_key(store: Store) -> str:
    return hashlib.sha256(store.url.encode()).hexdigest()[:16]


@dataclass
class ReplayReport:
    files: int = 0
    batches_written: int = 0
    batches_skipped: int = 0
    points_written: int = 0
    runs_ended: int = 0
    skipped_locked: int = 0

    def add(self, other: ReplayReport) -> None:
        """Count ``other``'s replay in too (what ``sync`` adds of this process's own file)."""
        for name in ("files", "batches_written", "batches_skipped", "points_written", "runs_ended"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Spool:
    """This process's spool file for one store (created on the first append).

    Example::

        spool = Spool(Path(".conveyor/spool"), store)
        spool.add_metrics("3f2a…", [("run", "loss", 0.3, 0, 1700000000000)])
        spool.replay_own()     # once the store answers again
    """

    def __init__(self, folder: Path, store: Store) -> None:
        self.folder = folder
        self.store = store
        self.path = folder / f"{store_key(store)}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._handle: IO[str] | None = None
        self._lock = threading.Lock()  # guards the file handle and appends
        self._pending = 0

    @property
    def pending(self) -> int:
        return self._pending

    def add_metrics(self, batch_id: str, points: Sequence[Point]) -> None:
        self._append({"kind": "metrics", "batch": batch_id, "points": [list(p) for p in points]})

    def add_end(self, run_id: str, status: RunStatus, error: str | None) -> None:
        self._append({"kind": "end", "run": run_id, "status": status.value, "error": error, "at": now_ms()})

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, allow_nan=True) + "\n"
        with self._lock:
            if self._handle is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
                fcntl.flock(self._handle, fcntl.LOCK_EX)
                _fsync_dir(self.folder)
            self._handle.write(line)
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._pending += 1

    def replay_own(self) -> ReplayReport:
        """Replay this process's own file (holding its lock), then empty it."""
        with self._lock:
            if self._handle is None or not self._pending:
                return ReplayReport()
            report = ReplayReport(files=1)
            self._replay_file(self.path, report)
            self._handle.truncate(0)
            self._handle.seek(0)
            os.fsync(self._handle.fileno())
            self._pending = 0
            return report

    def _replay_file(self, path: Path, report: ReplayReport) -> None:
        """Send one file's records to where they belong (the remote spool sends to the server)."""
        _replay_file(self.store, path, report)

    def close(self) -> None:
        with self._lock:
            if self._handle is None:
                return
            empty = self._pending == 0
            if empty:
                self.path.unlink(missing_ok=True)
            self._handle.close()
            self._handle = None
            if not empty:
                log.warning(
                    "conveyor: %d write(s) the metadata store did not take are kept in %s; "
                    "run `conveyor sync` when it is back", self._pending, self.path,
                )


def replay(store: Store, folder: Path) -> ReplayReport:
    """Replay every spool file of ``store`` in ``folder`` that no live process holds."""
    return replay_files(folder, store_key(store), lambda path, report: _replay_file(store, path, report))


def replay_files(folder: Path, key: str, replay_file: Callable[[Path, ReplayReport], None]) -> ReplayReport:
    """``replay_file`` each spool file named after ``key`` in ``folder`` that no live process
    holds, then remove it (the embedded and the remote spools share this loop)."""
    report = ReplayReport()
    if not folder.is_dir():
        return report
    prefix = key + "-"
    for path in sorted(folder.glob(prefix + "*.jsonl")):
        try:
            handle = open(path, "r+", encoding="utf-8")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            continue
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                report.skipped_locked += 1  # its process is alive and replays it itself
                continue
            if not path.exists():  # replayed and removed by another process meanwhile
                continue
            report.files += 1
            replay_file(path, report)
            path.unlink(missing_ok=True)
    return report


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a spool file in order; a torn line (a crash mid-append) is skipped."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            yield json.loads(line)
        except ValueError:
            log.warning("conveyor: skipping a torn line %d of %s", number, path)


def _replay_file(store: Store, path: Path, report: ReplayReport) -> None:
    for record in read_records(path):
        if record.get("kind") == "metrics":
            points: list[Point] = [(r, k, float(v), int(s), int(t)) for r, k, v, s, t in record["points"]]
            batch = str(record["batch"])
            wrote = store.transaction(
                lambda conn, b=batch, p=points: store.metrics.write_batch(conn, b, p),
                durable=False, what="replaying spooled metrics",
            )
            if wrote:
                report.batches_written += 1
                report.points_written += len(points)
            else:
                report.batches_skipped += 1
        elif record.get("kind") == "end":
            ended = store.transaction(lambda conn, r=record: _end(conn, r), what="replaying a spooled run end")
            report.runs_ended += int(ended)


def _end(conn: Any, record: dict[str, Any]) -> bool:
    stale = (runs.c.status == RunStatus.KILLED.value) & runs.c.error.like(STALE_MARK + "%")
    result = conn.execute(
        update(runs)
        .where(runs.c.id == record["run"], (runs.c.status == RunStatus.RUNNING.value) | stale)
        .values(status=record["status"], end_time=record["at"], error=record.get("error"))
    )
    return bool(result.rowcount)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
