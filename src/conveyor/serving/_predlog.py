"""The prediction log: requests, answers and feedback, written in the background.

Handlers call :meth:`LogWriter.add` (a list append under a lock: never I/O on the
request's path). A thread wakes every ``log_flush_s`` seconds (or when ``log_flush_rows``
rows are waiting), groups the records by model, version and hour, writes each group as
one Parquet object into the content-addressed artifact store and indexes it in the
``serving_log_files`` table. The buffer is bounded: beyond ``log_buffer_rows`` rows new
records are dropped and counted, so a slow store cannot exhaust memory. ``close`` writes
whatever is left (graceful shutdown loses nothing).

One bad record never stops the log: records are grouped by the kind of every column too
(a string label never shares a Parquet column with numeric ones), and a group whose table
cannot be built is written record by record; a record that cannot be written on its own
is set aside (counted in ``rejected``, logged with its request id) instead of being put
back, where it would fail every later flush. Only store errors (I/O) put records back.
"""

from __future__ import annotations

import io
import logging
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
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
    ) -> None:
        self.store = store
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
        from conveyor.store import LogFile, ServingLogRepo

        groups: dict[tuple[Any, ...], list[Record]] = defaultdict(list)
        for r in records:
            key = (r.kind, r.model, r.version, r.ts_ms // HOUR_MS, _layout(r.inputs), _layout(r.outputs))
            groups[key].append(r)
        tables = []
        for (kind, model, version, hour, _, _), group in groups.items():
            tables += [(kind, model, version, hour, part, data) for part, data in self._encode(group)]
        files = []
        now = int(time.time() * 1000)
        for kind, model, version, hour, group, data in tables:
            blob = self.blobs.put_bytes(data)
            files.append(LogFile(
                kind, model, version, hour * HOUR_MS, str(blob.digest), sum(r.rows for r in group),
                blob.size, min(r.ts_ms for r in group), max(r.ts_ms for r in group), now,
            ))
        # once: a retry after a lost commit acknowledgement must not index the files twice
        self.store.transaction(lambda conn: ServingLogRepo().record(conn, files), once=True,
                               what="indexing the prediction log")
        return files

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
        """Stop the thread and write what is left."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()


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
