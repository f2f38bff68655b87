"""Remote mode: a ``Tracker`` that talks to a ``conveyor server`` over ``/api/v1``.

``[server] url`` (or ``CONVEYOR_SERVER_URL``) makes ``Tracker.from_settings`` return a
:class:`RemoteTracker`: the client needs neither the database's password nor S3 keys,
only the server's URL (and a token when the server asks for one).

What stays the same as embedded mode: ``log_metric`` buffers in memory and a background
thread sends batches (``[tracking] flush_interval`` / ``batch_size``); runs beat their
heartbeat; params and tags are written before the call returns.

Faults: every request is retried with exponential backoff (0.1 s doubling to at most 5 s)
on connection errors and 5xx answers for up to ``[server] retry_seconds``. Each metric batch
carries an ``Idempotency-Key`` that the server records in the batch's transaction, so a
batch sent again after a lost answer is not written twice. A batch that still cannot be
sent is appended to this process's spool file (``[tracking] spool_dir``, the same
append-only, fsynced, ``flock``ed JSON-lines design as embedded mode) with its key, and sent
again, under the same key, as soon as the server answers; files left by a process that
died are sent by the next remote tracker opened on the same server, or ``conveyor sync``.

The parts: ``_client`` (``Http``, retries, errors), ``_wire`` (JSON ↔ entities),
``_remote_spool`` (spool and heartbeat), ``_remote_artifacts`` and ``_uploads``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from conveyor import errors as _errors
from conveyor.entities import Experiment, Metric, Run, RunStatus
from conveyor.errors import ConveyorError, InvalidInput, StorageError
from conveyor.settings import ServerSettings, Settings, TrackingSettings
from conveyor.store import DEFAULT_EXPERIMENT, Point, validate_key
from conveyor.tracking import _capture
from conveyor.tracking._client import AccessDenied, Http, ServerUnreachable
from conveyor.tracking._remote_artifacts import RemoteArtifacts
from conveyor.tracking._remote_spool import RemoteSpool, _RemoteHeartbeat, replay_remote
from conveyor.tracking._spool import ReplayReport
from conveyor.tracking._tracker import Tracker
from conveyor.tracking._wire import _experiment, _float, _id, _param, _point_json, _quote, _run

if TYPE_CHECKING:
    import pandas as pd

_log = logging.getLogger("conveyor.tracking")

#: Runs asked for per search page.
PAGE_SIZE = 1000


class RemoteTracker(RemoteArtifacts, Tracker):
    """The ``Tracker`` interface over a ``conveyor server`` (see the module's docstring).

    Example::

        tracker = RemoteTracker(ServerSettings(url="http://127.0.0.1:5000"))
        run = tracker.create_run("demo")
        tracker.log_metric(run.id, "loss", 0.3, step=1)
        tracker.end_run(run.id)
    """

    def __init__(  # noqa: D107 - no Tracker.__init__: there is no store here
        self,
        server: ServerSettings,
        settings: TrackingSettings | None = None,
        *,
        spool_dir: str | Path | None = None,
    ) -> None:
        self.settings = settings or TrackingSettings()
        self.server = server
        self.project_settings = None
        self.http = Http(server)
        self._start_buffering(
            RemoteSpool(Path(spool_dir), self.http) if spool_dir is not None else None,
            _RemoteHeartbeat(self.http, interval=self.settings.heartbeat_interval, also=self._replay_own),
        )
        self._send_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, create: bool = True, remote: bool = True) -> RemoteTracker:
        tracker = cls(settings.server, settings.tracking, spool_dir=settings.spool_dir)
        tracker.project_settings = settings
        tracker.sync(quiet=True)
        return tracker

    # -- what embedded mode has and remote mode has not ----------------------------------------------
    @property
    def store(self) -> Any:  # type: ignore[override]
        raise _remote_only("the metadata store")

    @store.setter
    def store(self, value: Any) -> None:
        raise _remote_only("the metadata store")

    @property
    def blobs(self) -> Any:  # type: ignore[override]
        raise _remote_only("the artifact store")

    @blobs.setter
    def blobs(self, value: Any) -> None:
        raise _remote_only("the artifact store")

    @property
    def store_settings(self) -> Any:  # type: ignore[override]
        raise _remote_only("the store settings")

    @store_settings.setter
    def store_settings(self, value: Any) -> None:
        raise _remote_only("the store settings")

    @property
    def s3_endpoint_url(self) -> str | None:
        return None

    def _close_backend(self) -> None:
        self.http.close()

    # -- faults (``sync`` and ``_replay_own`` are Tracker's) ---------------------------------------
    _backend_name = "the server"

    def _replay_left(self, folder: Path) -> ReplayReport:
        return replay_remote(self.http, folder)

    # -- experiments ----------------------------------------------------------------------------------
    def create_experiment(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Experiment:
        body = {"name": name, "description": description, "tags": {k: str(v) for k, v in (tags or {}).items()}}
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"experiment name {name!r} is not valid", field="experiment", value=name)
        return _experiment(self.http.json("POST", "/experiments", json=body, retry=False))

    def get_experiment(self, name_or_id: str | int) -> Experiment:
        if isinstance(name_or_id, int):
            return _experiment(self.http.json("GET", f"/experiments/{name_or_id}"))
        return _experiment(self.http.json("GET", "/experiments/by-name", params={"name": name_or_id}))

    def list_experiments(self, *, include_archived: bool = False) -> list[Experiment]:
        found = self.http.json("GET", "/experiments", params={"include_archived": include_archived})
        return [_experiment(e) for e in found]

    # -- runs ------------------------------------------------------------------------------------------
    def create_run(
        self,
        experiment: str | None = None,
        *,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        capture: bool = True,
        cwd: str | Path | None = None,
    ) -> Run:
        body: dict[str, Any] = {
            "experiment": experiment or DEFAULT_EXPERIMENT,
            "run_id": uuid.uuid4().hex,  # chosen here: a retried create finds its own run
            "name": name,
            "tags": {validate_key("tag", k): str(v) for k, v in (tags or {}).items()},
            "parent_id": parent_id,
        }
        if capture:
            body.update(self._remote_context(cwd))
        data = self.http.json("POST", "/runs", json=body)
        if self._packages_digest is None and data.get("packages_digest"):
            self._packages_digest = data["packages_digest"]
        run = _run(data)
        self._known_runs.add(run.id)
        self._heartbeat.add(run.id)
        return run

    def _remote_context(self, cwd: str | Path | None) -> dict[str, Any]:
        fields = {k: v for k, v in Tracker._context(self, cwd).items() if k != "packages_digest"}
        if self.settings.capture_packages:
            if self._packages_digest is not None:
                fields["packages_digest"] = self._packages_digest
            else:
                fields["packages"] = _capture.installed_packages()
        return fields

    def _packages(self) -> str:  # Tracker._context asks for it; remote sends the text instead
        return ""

    def end_run(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, *, error: str | None = None) -> None:
        """Send the run's last points and its end in one batch (one transaction on the server)."""
        status = RunStatus(status)
        end = {"status": status.value, "error": error}

        def send_and_end(points: Sequence[Point]) -> None:
            mine = [p for p in points if p[0] == run_id]
            others = [p for p in points if p[0] != run_id]
            if others:
                self._write_points(others)
            self._send(run_id, mine, end=end)

        self._buffer.drain_into(send_and_end, always=True)
        self._heartbeat.discard(run_id)

    def get_run(self, run_id: str) -> Run:
        self._buffer.flush()
        return _run(self.http.json("GET", f"/runs/{_id(run_id)}"))

    def delete_runs(self, run_ids: Sequence[str]) -> None:
        for run_id in run_ids:
            self.http.request("DELETE", f"/runs/{_id(run_id)}")

    def restore_runs(self, run_ids: Sequence[str]) -> None:
        for run_id in run_ids:
            self.http.request("POST", f"/runs/{_id(run_id)}/restore")

    def _require_run(self, run_id: str) -> None:
        if run_id in self._known_runs:
            return
        found = _run(self.http.json("GET", f"/runs/{_id(run_id)}"))
        if found.deleted:
            raise _errors.Conflict(f"run {run_id} is deleted; restore it before logging to it")
        self._known_runs.add(run_id)

    # -- params, tags, metrics -----------------------------------------------------------------------
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Written on the server before this returns (retried under one idempotency key)."""
        if params:
            self._batch(run_id, {"params": {validate_key("param", k): _param(v) for k, v in params.items()}})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        if tags:
            self._batch(run_id, {"tags": {validate_key("tag", k): str(v) for k, v in tags.items()}})

    def delete_tag(self, run_id: str, key: str) -> None:
        self.http.request("DELETE", f"/runs/{_id(run_id)}/tags/{_quote(validate_key('tag', key))}")

    def _batch(self, run_id: str, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.json(
            "POST", f"/runs/{_id(run_id)}/batch", json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex})
        return answer

    def _write_points(self, points: Sequence[Point]) -> None:
        by_run: dict[str, list[Point]] = {}
        for point in points:
            by_run.setdefault(point[0], []).append(point)
        for run_id, mine in by_run.items():
            self._send(run_id, mine)

    def _send(self, run_id: str, points: Sequence[Point], *, end: dict[str, Any] | None = None) -> None:
        """One batch under a fresh key: sent (retried), or spooled when the server stays away."""
        if not points and end is None:
            return
        key = uuid.uuid4().hex
        body: dict[str, Any] = {"metrics": [_point_json(p) for p in points], "end": end}
        spool = self._spool
        with self._send_lock:
            if spool is not None and spool.pending:
                try:  # the server was away: send what waits first (one quick try)
                    spool.replay_own()
                except StorageError:
                    spool.add_batch(run_id, key, body)
                    return
            try:
                self.http.request("POST", f"/runs/{_id(run_id)}/batch", json=body,
                                  headers={"Idempotency-Key": key})
            except ServerUnreachable as exc:
                if spool is None:
                    raise
                _log.warning("conveyor: server unreachable (%s); spooling to %s", exc.headline, spool.path)
                spool.add_batch(run_id, key, body)

    def metric_history(self, run_id: str, key: str, *, max_points: int | None = None) -> list[Metric]:
        self._buffer.flush()
        params = {"max_points": max_points} if max_points is not None else None
        data = self.http.json("GET", f"/runs/{_id(run_id)}/metrics/{_quote(validate_key('metric', key))}",
                              params=params)
        return [Metric(p["key"], _float(p["value"]), p["step"], p["timestamp"]) for p in data["points"]]

    # -- search ------------------------------------------------------------------------------------------
    def search_runs(  # type: ignore[override]
        self,
        experiments: str | Sequence[str] | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int | None = None,
        *,
        output: Literal["frame", "runs"] = "frame",
        include_deleted: bool = False,
    ) -> pd.DataFrame | list[Run]:
        self._buffer.flush()
        if isinstance(order_by, str):
            order_by = [order_by]
        if output not in ("frame", "runs"):
            raise InvalidInput(f"unknown output {output!r}", field="output", value=output, hint="'frame' or 'runs'")
        names = None if experiments is None else ([experiments] if isinstance(experiments, str) else list(experiments))
        found: list[Run] = []
        token = None
        while max_results is None or len(found) < max_results:
            size = PAGE_SIZE if max_results is None else max(1, min(PAGE_SIZE, max_results - len(found)))
            page = self.http.json("POST", "/runs/search", json={
                "experiments": names, "filter": filter, "order_by": list(order_by), "max_results": size,
                "page_token": token, "include_deleted": include_deleted})
            found += [_run(r) for r in page["runs"]]
            token = page["next_page_token"]
            if token is None:
                break
        if output == "runs":
            return found
        from conveyor.tracking._frame import runs_frame

        return runs_frame(found)


def _remote_only(what: str) -> ConveyorError:
    return ConveyorError(
        f"{what} is not reachable in remote mode ([server] url is set): this client talks only to the server",
        hint="unset CONVEYOR_SERVER_URL (and [server] url) to work on the stores directly",
    )


__all__ = ["AccessDenied", "Http", "RemoteTracker", "ServerUnreachable"]
