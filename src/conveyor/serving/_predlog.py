"""The prediction log: requests, answers and feedback, written in the background.

Handlers call :meth:`LogWriter.add` (a list append under a lock: never I/O on the
request's path). A thread wakes every ``log_flush_s`` seconds (or when ``log_flush_rows``
rows are waiting), groups the records by model, version and hour, writes each group as
one Parquet object into the content-addressed artifact store and indexes it in the
``serving_log_files`` table. The buffer is bounded: beyond ``log_buffer_rows`` rows new
records are dropped and counted, so a slow store cannot exhaust memory. ``close`` writes
whatever is left, retrying for up to ``close_retry_s`` seconds; if the stores still fail,
it spools the rows to local disk (``<spool_dir>/predictions``: one Parquet file and one
JSON index line per object, fsynced) instead of losing them. The next server start over
the same stores, or ``conveyor sync``, replays the spool: each object is stored and indexed
once (an object already indexed is not indexed again).

One bad record never stops the log: records are grouped by the kind of every column too
(a string label never shares a Parquet column with numeric ones), and a group whose table
cannot be built is written record by record; a record that cannot be written on its own
is set aside (counted in ``rejected``, logged with its request id) instead of being put
back, where it would fail every later flush. Only store errors (I/O) put records back.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from conveyor.serving._codec import Columns

log = logging.getLogger("conveyor.serving")

META = ("request_id", "row", "timestamp", "model", "version", "latency_ms")
HOUR_MS = 3_600_000


@dataclass(slots=True)
class Record:
    """One answered request (``kind="predictions"``) or one feedback message (``"feedback"``)."""

    kind: str
    model: str
    version: str
    request_id: str
    ts_ms: int
    rows: int
    inputs: Columns
    outputs: Columns
    latency_ms: float = 0.0
    first_row: int = 0  # feedback may name one row of a request


class LogWriter:
    """Buffer records and write them as Parquet objects from a background thread.

    Example::

        writer = LogWriter(store, blobs, flush_s=1.0); writer.start()
        writer.add(record)          # from a request handler: no I/O
        writer.close()              # flushes what is left
    """

    def __init__(
        self,
        store: Any,
        blobs: Any,
        *,
        flush_s: float = 1.0,
        flush_rows: int = 5000,
        buffer_rows: int = 100_000,
        sample_rate: float = 1.0,
        spool_dir: str | Path | None = None,
        close_retry_s: float = 10.0,
    ) -> None:
        self.store = store
        self.spool = Path(spool_dir) / SPOOL_SUBDIR if spool_dir is not None else None
        self.close_retry_s = close_retry_s
        self.spooled = 0
        self.blobs = blobs
        self.flush_s = flush_s
        self.flush_rows = flush_rows
        self.buffer_rows = buffer_rows
        self.sample_rate = sample_rate
        self.dropped = 0
        self.rejected = 0
        self.written = 0
        self._buffer: list[Record] = []
        self._rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._random = random.Random()

    def sampled(self) -> bool:
        """Whether the next request should be logged (the sampling rate)."""
        return self.sample_rate >= 1.0 or self._random.random() < self.sample_rate

    def add(self, record: Record) -> bool:
        """Queue a record; False when the buffer is full and it was dropped."""
        with self._lock:
            if self._rows + record.rows > self.buffer_rows:
                self.dropped += record.rows
                return False
            self._buffer.append(record)
            self._rows += record.rows
            full = self._rows >= self.flush_rows
        if full:
            self._wake.set()
        return True

    def add_all(self, records: list[Record]) -> bool:
        """Queue all of ``records`` or none of them (False: the buffer has no room now)."""
        rows = sum(r.rows for r in records)
        with self._lock:
            if self._rows + rows > self.buffer_rows:
                return False
            self._buffer.extend(records)
            self._rows += rows
            full = self._rows >= self.flush_rows
        if full:
            self._wake.set()
        return True

    def start(self) -> None:
        if self.spool is not None:
            try:
                replay_spool(self.store, self.blobs, self.spool)
            except Exception:  # the stores are still away: the next start or `conveyor sync` replays
                log.warning("prediction log: could not replay the spool in %s yet", self.spool, exc_info=True)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="conveyor-prediction-log", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_s)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # keep the thread alive; the records were put back
                log.exception("prediction log: flush failed; will retry")

    def flush(self) -> list[Any]:
        """Write everything buffered now; returns the index rows written."""
        with self._lock:
            records, self._buffer, self._rows = self._buffer, [], 0
        if not records:
            return []
        try:
            files = self._write(records)
        except Exception:
            with self._lock:  # put them back (bounded: drop what no longer fits)
                room = max(self.buffer_rows - self._rows, 0)
                kept = []
                for r in records:
                    if r.rows <= room:
                        kept.append(r)
                        room -= r.rows
                    else:
                        self.dropped += r.rows
                self._buffer[:0] = kept
                self._rows += sum(r.rows for r in kept)
            raise
        self.written += sum(f.rows for f in files)
        return files

    def _write(self, records: list[Record]) -> list[Any]:
        from conveyor.store import ServingLogRepo

        files = [self._store_object(meta, data) for meta, data in self._objects(records)]
        # once: a retry after a lost commit acknowledgement must not index the files twice
        self.store.transaction(lambda conn: ServingLogRepo().record(conn, files), once=True,
                               what="indexing the prediction log")
        return files

    def _store_object(self, meta: dict[str, Any], data: bytes) -> Any:
        from conveyor.store import LogFile

        blob = self.blobs.put_bytes(data)
        return LogFile(meta["kind"], meta["model"], meta["version"], meta["hour"], str(blob.digest), meta["rows"],
                       blob.size, meta["first_ts"], meta["last_ts"], int(time.time() * 1000))

    def _objects(self, records: list[Record]) -> list[tuple[dict[str, Any], bytes]]:
        """The Parquet objects ``records`` make, each with its index fields (no digest yet)."""
        groups: dict[tuple[Any, ...], list[Record]] = defaultdict(list)
        for r in records:
            key = (r.kind, r.model, r.version, r.ts_ms // HOUR_MS, _layout(r.inputs), _layout(r.outputs))
            groups[key].append(r)
        tables = []
        for (kind, model, version, hour, _, _), group in groups.items():
            tables += [(kind, model, version, hour, part, data) for part, data in self._encode(group)]
        return [({"kind": kind, "model": model, "version": version, "hour": hour * HOUR_MS,
                  "rows": sum(r.rows for r in group), "first_ts": min(r.ts_ms for r in group),
                  "last_ts": max(r.ts_ms for r in group)}, data)
                for kind, model, version, hour, group, data in tables]

    def _encode(self, group: list[Record]) -> list[tuple[list[Record], bytes]]:
        """Parquet bytes of the group; if the group cannot be encoded, of each record that can."""
        try:
            return [(group, _parquet(_table(group)))]
        except Exception:
            if len(group) == 1:
                self._reject(group[0])
                return []
        out = []
        for record in group:
            try:
                out.append(([record], _parquet(_table([record]))))
            except Exception:
                self._reject(record)
        return out

    def _reject(self, record: Record) -> None:
        with self._lock:
            self.rejected += record.rows
        log.error("prediction log: set aside %d %s row(s) of request %s (model %s version %s) that cannot be "
                  "written", record.rows, record.kind, record.request_id, record.model, record.version,
                  exc_info=True)

    def close(self) -> None:
        """Stop the thread and write what is left: retried for ``close_retry_s`` seconds,
        then spooled to local disk (when a spool folder is set) rather than lost."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        deadline = time.monotonic() + self.close_retry_s
        delay = 0.2
        while True:
            try:
                self.flush()
                return
            except Exception:
                if time.monotonic() + delay > deadline:
                    if self.spool is None:
                        raise
                    break
                log.warning("prediction log: final write failed; retrying in %.1f s", delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        with self._lock:
            records, self._buffer, self._rows = self._buffer, [], 0
        objects = self._objects(records)
        write_spool(self.spool, objects)
        self.spooled += sum(meta["rows"] for meta, _ in objects)
        log.error("prediction log: the stores did not answer; %d row(s) kept in %s — the next server start "
                  "or `conveyor sync` stores them", self.spooled, self.spool)


SPOOL_SUBDIR = "predictions"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_spool(folder: Path, objects: list[tuple[dict[str, Any], bytes]]) -> None:
    """Keep each object as ``<id>.parquet`` plus ``<id>.json`` (its index fields), both
    fsynced; the JSON file is renamed in last, so a crash mid-way leaves no entry a replay
    would trust (a lone Parquet file is removed by the next replay)."""
    folder.mkdir(parents=True, exist_ok=True)
    for meta, data in objects:
        name = uuid.uuid4().hex
        for suffix, payload in ((".parquet", data), (".json", json.dumps(meta).encode())):
            tmp = folder / f".{name}{suffix}.tmp"
            with open(tmp, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, folder / f"{name}{suffix}")
    _fsync_dir(folder)


def replay_spool(store: Any, blobs: Any, folder: Path) -> int:
    """Store and index every spooled object in ``folder``; returns the rows replayed. An
    object whose digest is already indexed for the same model is only removed from the
    spool (a replay that died after indexing does not index it twice)."""
    from sqlalchemy import select

    from conveyor.store import ServingLogRepo
    from conveyor.store._serving import serving_log_files as t

    if not folder.is_dir():
        return 0
    import fcntl

    with open(folder / ".replay.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one replayer at a time (several workers start together)
        return _replay_locked(store, blobs, folder, select, ServingLogRepo, t)


def _replay_locked(store: Any, blobs: Any, folder: Path, select: Any, repo: Any, t: Any) -> int:
    rows = 0
    for index in sorted(folder.glob("*.json")):
        data_file = index.with_suffix(".parquet")
        if not data_file.exists():
            index.unlink()
            continue
        meta = json.loads(index.read_text("utf-8"))
        writer = LogWriter(store, blobs)
        found = writer._store_object(meta, data_file.read_bytes())
        with store.write() as conn:
            known = conn.execute(select(t.c.id).where(
                t.c.digest == found.digest, t.c.kind == found.kind, t.c.model == found.model,
                t.c.version == found.version).limit(1)).first()
            if known is None:
                repo().record(conn, [found])
                rows += found.rows
        index.unlink()
        data_file.unlink()
    for stray in folder.glob("*.parquet"):
        # its index was never written: a crash mid-spool (an hour old, so not one being written now)
        if not stray.with_suffix(".json").exists() and time.time() - stray.stat().st_mtime > 3600:
            stray.unlink()
    return rows


def _table(group: list[Record]) -> Any:
    import pyarrow as pa

    n = sum(r.rows for r in group)
    columns: dict[str, Any] = {
        "request_id": pa.array(np.repeat([r.request_id for r in group], [r.rows for r in group]).astype(object),
                               pa.string()),
        "row": pa.array(np.concatenate([np.arange(r.first_row, r.first_row + r.rows, dtype=np.int64) for r in group]),
                        pa.int64()),
        "timestamp": pa.array(np.repeat([r.ts_ms for r in group], [r.rows for r in group]).astype("datetime64[ms]"),
                              pa.timestamp("ms", tz="UTC")),
        "model": pa.array([group[0].model] * n, pa.string()),
        "version": pa.array([group[0].version] * n, pa.string()),
    }
    if group[0].kind == "predictions":
        columns["latency_ms"] = pa.array(np.repeat([r.latency_ms for r in group], [r.rows for r in group]), pa.float64())
    for name in group[0].inputs:
        columns[name] = _arrow([r.inputs[name] for r in group])
    for name in group[0].outputs:
        key = name if name not in columns else f"output_{name}"
        columns[key] = _arrow([r.outputs[name] for r in group])
    return pa.table(columns)


def _layout(columns: Columns) -> tuple[tuple[str, str], ...]:
    """Column names with the kind of their values: records only share a file when both match."""
    from conveyor.serving._codec import MatrixColumns

    if isinstance(columns, MatrixColumns):
        return tuple((name, columns.matrix.dtype.kind) for name in columns.names)
    return tuple((name, np.asarray(values).dtype.kind) for name, values in columns.items())


def _arrow(parts: list[np.ndarray]) -> Any:
    import pyarrow as pa

    arr = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if arr.ndim > 1 or arr.dtype.kind == "O":
        try:
            return pa.array(arr.tolist())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return pa.array([None if v is None else str(v) for v in arr.tolist()], pa.string())
    return pa.array(arr)


def _parquet(table: Any) -> bytes:
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()
