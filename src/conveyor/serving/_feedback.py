"""Feedback that joins to real predictions: which request ids were answered, by which
version, with how many rows; and the checks a feedback message passes before it is logged.

A label is accepted only for a request id that is in the prediction log of that model
(answered by this process and logged, or found in the log files other workers wrote within
``feedback_max_age_s``), for rows that request had, and of the kind the answering version's
signature gives its output (a number, a string or a boolean). The feedback row carries that
version, so the join (``read_prediction_log(..., with_feedback=True)``) and the export
know which model answered.

The index of request ids is a bounded LRU (``MEMORY_IDS`` per server, oldest forgotten
first). On a miss it reads the ``request_id``/``row``/``version`` columns of log files it has
not read yet (at most once per ``RESCAN_S`` per model), so a request answered by another
worker is accepted once that worker has flushed its log (``log_flush_s``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from conveyor.entities import Signature
from conveyor.serving._errors import HTTPError, bad_request, unprocessable
from conveyor.serving._http import valid_request_id
from conveyor.serving._predlog import HOUR_MS, Record

log = logging.getLogger("conveyor.serving")

#: request ids remembered per server (all models together); older ones are looked up again
MEMORY_IDS = 200_000
#: shortest pause between two reads of new log files for one model
RESCAN_S = 0.25
#: files whose last row is this much older than the previous read are not read again
_OVERLAP_MS = 10 * 60 * 1000


@dataclass(frozen=True, slots=True)
class Answered:
    """One answered request: the version that answered and the rows it had."""

    version: str
    rows: int


class RequestIndex:
    """Request ids of the prediction log, per model.

    Example::

        index = RequestIndex(store, blobs, max_age_s=7 * 86400)
        index.remember("iris", "r1", "3", rows=2)      # the server, when it logs an answer
        index.lookup("iris", "r1")                      # Answered(version='3', rows=2)
    """

    def __init__(self, store: Any, blobs: Any, *, max_age_s: float, capacity: int = MEMORY_IDS) -> None:
        self.store = store
        self.blobs = blobs
        self.max_age_ms = int(max_age_s * 1000)
        self.capacity = capacity
        self._known: OrderedDict[tuple[str, str], Answered] = OrderedDict()
        self._lock = threading.Lock()  # guards _known
        self._scan_lock = threading.Lock()  # one reader of log files at a time
        self._read: dict[str, dict[str, int]] = {}  # model → digest → last_ts of files already read
        self._scanned: dict[str, tuple[float, int]] = {}  # model → (monotonic time, wall ms) of the last read

    def remember(self, model: str, request_id: str, version: str, rows: int) -> None:
        with self._lock:
            self._put((model, request_id), Answered(version, rows))

    def _put(self, key: tuple[str, str], answered: Answered) -> None:
        self._known[key] = answered
        self._known.move_to_end(key)
        while len(self._known) > self.capacity:
            self._known.popitem(last=False)

    def cached(self, model: str, request_id: str) -> Answered | None:
        """The answer if this index holds it already (no I/O)."""
        with self._lock:
            return self._known.get((model, request_id))

    def lookup(self, model: str, request_id: str, skip_versions: frozenset[str] = frozenset()) -> Answered | None:
        """The answer logged for ``request_id``, or None. Blocking (may read the store):
        call it from a thread. ``skip_versions`` are shadows, whose answers nobody saw."""
        with self._lock:
            hit = self._known.get((model, request_id))
        if hit is not None or self.store is None:
            return hit
        self._scan(model, skip_versions)
        with self._lock:
            return self._known.get((model, request_id))

    def _scan(self, model: str, skip_versions: frozenset[str]) -> None:
        from conveyor.blobs import Digest
        from conveyor.store import ServingLogRepo

        with self._scan_lock:
            now = time.monotonic()
            wall = int(time.time() * 1000)
            last = self._scanned.get(model)
            if last is not None and now - last[0] < RESCAN_S:
                return
            since = wall - self.max_age_ms if last is None else max(wall - self.max_age_ms, last[1] - _OVERLAP_MS)
            files = self.store.query(lambda conn: ServingLogRepo().find(conn, "predictions", model, None, since, None),
                                     what=f"finding the prediction log files of {model!r}")
            seen = self._read.setdefault(model, {})
            found: dict[str, Answered] = {}
            for f in files:
                if f.digest in seen or f.version in skip_versions:
                    continue
                try:
                    found.update(_answers(self.blobs.read_bytes(Digest.parse(f.digest)), f.version))
                except Exception:  # an unreadable file must not make every feedback fail
                    log.warning("feedback: cannot read prediction-log file %s", f.digest, exc_info=True)
                seen[f.digest] = f.last_ts
            for digest in [d for d, ts in seen.items() if ts < since - HOUR_MS]:
                del seen[digest]
            self._scanned[model] = (now, wall)
        with self._lock:
            for rid, answered in found.items():
                if (model, rid) not in self._known:  # what this process saw itself wins
                    self._put((model, rid), answered)


def _answers(data: bytes, version: str) -> dict[str, Answered]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(data), columns=["request_id", "row"])
    rids = table.column("request_id").to_numpy(zero_copy_only=False)
    rows = table.column("row").to_numpy()
    out: dict[str, Answered] = {}
    for rid, row in zip(rids.tolist(), rows.tolist(), strict=True):
        seen = out.get(rid)
        if seen is None or row + 1 > seen.rows:
            out[rid] = Answered(version, row + 1)
    return out


# -- checking one feedback message ---------------------------------------------------------------------
def parse_entries(body: Any) -> list[dict[str, Any]]:
    """The feedback entries of a body: one object, ``{"feedback": [...]}`` or a list."""
    entries = body.get("feedback", [body]) if isinstance(body, dict) else body
    if not isinstance(entries, list) or not entries:
        raise bad_request("send {'request_id': id, 'label': value} (or 'labels': [...] per row), "
                          "or {'feedback': [those…]}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not valid_request_id(entry.get("request_id")):
            raise bad_request(f"feedback[{i}] needs a 'request_id' (letters, digits, . _ : -; up to 128)")
        if ("label" in entry) == ("labels" in entry):
            raise bad_request(f"feedback[{i}] needs exactly one of 'label' (one row) or 'labels' (one per row)")
        labels = entry["labels"] if "labels" in entry else [entry["label"]]
        row = entry.get("row", 0)
        if not isinstance(labels, list) or not labels:
            raise unprocessable(f"feedback[{i}].labels must be a non-empty list, got {_short(labels)}")
        if not isinstance(row, int) or isinstance(row, bool) or row < 0:
            raise unprocessable(f"feedback[{i}].row must be a row index ≥ 0 of the request, got {_short(row)}")
    return entries


def record(model: str, entry: dict[str, Any], index: int, answered: Answered | None,
           signature: Signature | None) -> Record:
    """The log record of one checked entry (422/404 naming the field otherwise)."""
    rid = entry["request_id"]
    if answered is None:
        raise HTTPError(404, f"feedback[{index}].request_id {rid!r}: model {model!r} has no logged answer to it "
                        "(never answered, older than feedback_max_age_s, not sampled by log_sample_rate, or "
                        "answered by another worker that has not flushed its log yet)")
    labels = entry["labels"] if "labels" in entry else [entry["label"]]
    row = entry.get("row", 0)
    if row + len(labels) > answered.rows:
        what = "labels" if len(labels) > 1 else "row"
        raise unprocessable(f"feedback[{index}].{what}: request {rid!r} had {answered.rows} row(s); rows "
                            f"{row}..{row + len(labels) - 1} do not exist (row {row}, {len(labels)} label(s))")
    values = _check_labels(labels, signature, index)
    return Record("feedback", model, answered.version, rid, int(time.time() * 1000), len(labels), {},
                  {"label": values}, first_row=row)


def _check_labels(labels: list[Any], signature: Signature | None, index: int) -> np.ndarray:
    """Labels as one array of the kind of the model's (first) output."""
    dtype = signature.outputs[0].dtype if signature is not None and signature.outputs else None
    numeric = dtype is not None and dtype.startswith(("int", "uint", "float"))
    for i, v in enumerate(labels):
        where = f"feedback[{index}].labels[{i}]" if len(labels) > 1 else f"feedback[{index}].label"
        if isinstance(v, (dict, list)) or v is None:
            raise unprocessable(f"{where}: a label is a number, a string or a boolean, got {_short(v)}")
        if numeric and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise unprocessable(f"{where}: the model predicts {dtype} values, so labels are numbers; got {_short(v)}")
        if dtype == "bool" and not isinstance(v, bool):
            raise unprocessable(f"{where}: the model predicts booleans, so labels are true/false; got {_short(v)}")
        if dtype in ("string", "bytes") and not isinstance(v, str):
            raise unprocessable(f"{where}: the model predicts strings, so labels are strings; got {_short(v)}")
        if isinstance(v, float) and not math.isfinite(v):
            raise unprocessable(f"{where}: a label must be a finite number, got {v}")
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**53:
            raise unprocessable(f"{where}: {_short(v)} is beyond the integers a float64 column holds exactly")
    kinds = {_kind(v) for v in labels}
    if len(kinds) > 1:
        raise unprocessable(f"feedback[{index}].labels mixes {' and '.join(sorted(kinds))}; send one kind")
    if numeric:
        exact = not dtype.startswith("float") and all(isinstance(v, int) for v in labels)
        return np.asarray(labels, dtype=np.int64 if exact else np.float64)
    return np.asarray(labels, dtype=object if kinds == {"strings"} else None)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "booleans"
    if isinstance(value, (int, float)):
        return "numbers"
    return "strings"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
