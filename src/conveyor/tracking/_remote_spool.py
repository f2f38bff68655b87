"""The remote mode's spool and heartbeat: metric batches the server did not take, kept on
local disk with their ``Idempotency-Key`` and sent again under the same key; the runs this
process has open marked alive through ``/runs/heartbeat``.

A batch that cannot be sent within ``[server] retry_seconds`` is appended to this process's
spool file (``[tracking] spool_dir``, the same append-only, fsynced, ``flock``ed JSON-lines
design as embedded mode); files left by a process that died are sent by the next remote
tracker opened on the same server, or ``conveyor sync``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor import errors as _errors
from conveyor.errors import NotFound
from conveyor.tracking._client import Http
from conveyor.tracking._heartbeat import Heartbeat
from conveyor.tracking._spool import ReplayReport, Spool, read_records, replay_files, store_key

_log = logging.getLogger("conveyor.tracking")


@dataclass(frozen=True)
class _ServerKey:
    """What the spool names its files after (a hash of this URL)."""

    url: str


class _RemoteHeartbeat(Heartbeat):
    def __init__(self, http: Http, *, interval: float, also: Callable[[], None]) -> None:
        super().__init__(None, interval=interval, also=also)  # type: ignore[arg-type]
        self._http = http

    def beat(self) -> None:
        with self._lock:
            ids = sorted(self._runs)
        if ids:
            self._http.request("POST", "/runs/heartbeat", json={"run_ids": ids}, retry=False)
        if self._also is not None:
            self._also()


class RemoteSpool(Spool):
    """This process's spool of batches the server did not take, replayed under their keys."""

    def __init__(self, folder: Path, http: Http) -> None:
        super().__init__(folder, _ServerKey(http.url))  # type: ignore[arg-type]
        self.http = http

    def add_batch(self, run_id: str, key: str, body: dict[str, Any]) -> None:
        self._append({"kind": "batch", "run": run_id, "key": key, "body": body})

    def _replay_file(self, path: Path, report: ReplayReport) -> None:
        _replay_file(self.http, path, report)


def replay_remote(http: Http, folder: Path) -> ReplayReport:
    """Send every spool file of this server in ``folder`` that no live process holds."""
    key = store_key(_ServerKey(http.url))  # type: ignore[arg-type]
    return replay_files(folder, key, lambda path, report: _replay_file(http, path, report))


def _replay_file(http: Http, path: Path, report: ReplayReport) -> None:
    for record in read_records(path):
        if record.get("kind") != "batch":
            continue
        run_id, key, body = record["run"], record["key"], record["body"]
        try:
            answer = http.json("POST", f"/runs/{run_id}/batch", json=body, headers={"Idempotency-Key": key},
                               retry=False)
        except _errors.Conflict:
            if body.get("end") is None:
                raise
            # the run was ended meanwhile (by `runs gc-stale`, say): keep its points
            body = {**body, "end": None}
            answer = http.json("POST", f"/runs/{run_id}/batch", json=body, headers={"Idempotency-Key": key},
                               retry=False)
        except NotFound:
            _log.warning("conveyor: run %s is gone from the server; %d spooled point(s) dropped",
                         run_id, len(body.get("metrics", [])))
            continue
        if answer["applied"]:
            report.batches_written += 1
            report.points_written += int(answer["metrics"])
            report.runs_ended += int(body.get("end") is not None)
        else:
            report.batches_skipped += 1
