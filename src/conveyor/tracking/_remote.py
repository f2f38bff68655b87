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
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from conveyor import errors as _errors
from conveyor.blobs import Digest, Manifest
from conveyor.entities import Artifact, Experiment, Metric, Run, RunStatus
from conveyor.errors import ConveyorError, InvalidInput, NotFound, StorageError
from conveyor.settings import ServerSettings, Settings, TrackingSettings
from conveyor.store import DEFAULT_EXPERIMENT, Point, validate_key
from conveyor.tracking import _capture, _uploads
from conveyor.tracking._heartbeat import Heartbeat
from conveyor.tracking._spool import ReplayReport, Spool, replay_files, store_key
from conveyor.tracking._tracker import Tracker
from conveyor.tracking._values import artifact_path

if TYPE_CHECKING:
    import pandas as pd

_log = logging.getLogger("conveyor.tracking")

#: Backoff between retries: the first wait, the growth factor and the longest wait (seconds).
BACKOFF_FIRST, BACKOFF_FACTOR, BACKOFF_MAX = 0.1, 2.0, 5.0
#: Runs asked for per search page.
PAGE_SIZE = 1000
CHUNK = 1024 * 1024


class ServerUnreachable(StorageError):
    """The conveyor server did not answer (connection refused or reset, timeout, 5xx) within
    ``[server] retry_seconds``."""


class AccessDenied(ConveyorError, PermissionError):
    """The server refused the request: no token, a wrong or revoked token, or no permission."""


@dataclass(frozen=True)
class _ServerKey:
    """What the spool names its files after (a hash of this URL)."""

    url: str


def _error(response: httpx.Response) -> ConveyorError:
    """The server's one error shape as the same ConveyorError subclass as embedded mode."""
    try:
        body = response.json()["error"]
        code, message, field = str(body.get("code")), str(body.get("message")), body.get("field")
    except (ValueError, KeyError, TypeError, AttributeError):
        code, message, field = "", response.text[:500] or response.reason_phrase, None
    status = response.status_code
    named = getattr(_errors, response.headers.get("x-conveyor-error", ""), None)
    if status in (401, 403):
        return AccessDenied(f"the conveyor server refused: {message}",
                            hint="check [server] token (CONVEYOR_SERVER_TOKEN) and your permissions")
    if status == 404:
        error: ConveyorError = NotFound.__new__(NotFound)
        ConveyorError.__init__(error, message)
        error.kind, error.name = "resource", field  # type: ignore[attr-defined]
        return error
    if status == 409:
        cls = _errors.AlreadyExists if code == "ALREADY_EXISTS" else _errors.Conflict
        error = cls.__new__(cls)
        ConveyorError.__init__(error, message)
        return error
    if status >= 500:
        return ServerUnreachable(f"the conveyor server failed: {message}",
                                 hint="the server's log has the details")
    cls = named if isinstance(named, type) and issubclass(named, InvalidInput) else InvalidInput
    error = cls.__new__(cls)
    InvalidInput.__init__(error, message, field=field)  # type: ignore[arg-type]
    return error


class Http:
    """One keep-alive ``httpx.Client`` to ``<url>/api/v1`` with bounded retries."""

    def __init__(self, settings: ServerSettings) -> None:
        if settings.url is None:
            raise InvalidInput("no server URL", field="server.url", hint="set CONVEYOR_SERVER_URL")
        self.url = settings.url
        self.retry_seconds = settings.retry_seconds
        headers = {"User-Agent": "conveyor-remote"}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        self.client = httpx.Client(
            base_url=self.url + "/api/v1",
            headers=headers,
            timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 5.0)),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
            follow_redirects=False,
            # plain http needs no TLS context (loading the CA bundle costs ~0.5 s per process)
            verify=self.url.startswith("https://"),
        )

    def close(self) -> None:
        self.client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        retry: bool = True,
        content: Callable[[], Any] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """The answer to one request; 4xx raise the matching ConveyorError at once, connection
        errors and 5xx are retried (when ``retry``) until ``retry_seconds`` have passed.
        ``content`` makes a fresh body per attempt (an open file for a streamed upload)."""
        deadline = time.monotonic() + (self.retry_seconds if retry else 0.0)
        wait = BACKOFF_FIRST
        while True:
            body = content() if content is not None else None
            try:
                if body is not None:
                    kwargs["content"] = body
                response = self.client.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                failure: ConveyorError = ServerUnreachable(
                    f"conveyor server {self.url} is unreachable: {type(exc).__name__}: {exc}",
                    hint=f"check that `conveyor server` runs there; retried for {self.retry_seconds:g} s "
                    "([server] retry_seconds, CONVEYOR_SERVER_RETRY_SECONDS)",
                )
                failure.__cause__ = exc
            else:
                if response.status_code < 400:
                    return response
                failure = _error(response)
                if response.status_code < 500:
                    raise failure
            finally:
                if body is not None and hasattr(body, "close"):
                    body.close()
            left = deadline - time.monotonic()
            if left <= 0:
                raise failure
            time.sleep(min(wait, left))
            wait = min(wait * BACKOFF_FACTOR, BACKOFF_MAX)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def error(self, response: httpx.Response) -> ConveyorError:
        """The ConveyorError a (read) 4xx/5xx answer stands for (streamed requests)."""
        return _error(response)


# -- JSON → entities ------------------------------------------------------------------------------------
def _float(value: Any) -> float:
    return float(value)  # "NaN", "Infinity" and "-Infinity" parse as such


_RUN_FIELDS = frozenset(Run.__dataclass_fields__)


def _run(data: Mapping[str, Any]) -> Run:
    fields = {k: v for k, v in data.items() if k in _RUN_FIELDS}  # a newer server may say more
    fields["status"] = RunStatus(fields["status"])
    fields["metrics"] = {k: _float(v) for k, v in fields["metrics"].items()}
    return Run(**fields)


def _experiment(data: Mapping[str, Any]) -> Experiment:
    return Experiment(data["id"], data["name"], data["description"], data["archived"], data["created_at"],
                      dict(data["tags"]))


def _artifact(data: Mapping[str, Any]) -> Artifact:
    return Artifact(data["run_id"], data["path"], data["digest"], data["size"], data["media_type"], data["is_dir"])


def _point_json(point: Point) -> dict[str, Any]:
    _, key, value, step, stamp = point
    shown: Any = value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if shown == "nan":
        shown = "NaN"
    elif shown == "inf":
        shown = "Infinity"
    elif shown == "-inf":
        shown = "-Infinity"
    return {"key": key, "value": shown, "step": step, "timestamp": stamp}


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


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
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            _log.warning("conveyor: skipping a torn line %d of %s", number, path)
            continue
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


class RemoteTracker(Tracker):
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

    # -- artifacts ------------------------------------------------------------------------------------------
    def log_artifact(self, run_id: str, local_path: str | Path, artifact_path_: str | None = None) -> Artifact:
        source = Path(local_path)
        if source.is_dir():
            return self.log_artifacts(run_id, source, artifact_path_ or source.name)
        if not source.is_file():
            raise NotFound("file", str(source))
        path = artifact_path(artifact_path_, source.name)
        self._require_run(run_id)
        media = mimetypes.guess_type(source.name)[0] or "application/octet-stream"
        if source.stat().st_size > self.server.multipart_threshold:
            return _artifact(self._upload(run_id, path, source, media))
        return self._put(run_id, path, lambda: open(source, "rb"), media)  # noqa: SIM115 - closed by Http

    def _upload(self, run_id: str, path: str | None, source: Path, media: str) -> dict[str, Any]:
        """A big file in parts, or straight to S3 (resumable: see ``_uploads``)."""
        return _uploads.upload_file(self.http, _id(run_id), path, source, media,
                                    part_size=self.server.multipart_part_size,
                                    state_dir=getattr(self._spool, "folder", None))

    def _put(self, run_id: str, path: str, body: Callable[[], Any], media: str) -> Artifact:
        data = self.http.json("PUT", f"/runs/{_id(run_id)}/artifacts/{_quote(path)}", content=body,
                              headers={"Content-Type": media})
        return _artifact(data)

    def log_artifacts(self, run_id: str, local_dir: str | Path, artifact_path_: str | None = None) -> Artifact:
        """A folder: each file uploaded as a blob, then recorded as one manifest."""
        from conveyor.blobs import check_relative_path
        from conveyor.errors import UnsafePath

        source = Path(local_dir)
        if not source.is_dir():
            raise NotFound("folder", str(source))
        path = artifact_path(artifact_path_ or source.name)
        self._require_run(run_id)
        files: list[tuple[str, Path]] = []
        for dirpath, dirnames, filenames in os.walk(source):
            base = Path(dirpath)
            for name in sorted(dirnames + filenames):
                full = base / name
                rel = full.relative_to(source).as_posix()
                if full.is_symlink():
                    raise UnsafePath(f"{rel!r} in {str(source)!r} is a symbolic link", field="path", value=rel,
                                     hint="copy the target into the folder, or remove the link")
                if name in filenames:
                    files.append((check_relative_path(rel), full))
        entries = []
        for rel, full in sorted(files):
            if full.stat().st_size > self.server.multipart_threshold:
                blob = self._upload(run_id, None, full, "application/octet-stream")
            else:
                blob = self.http.json("PUT", f"/runs/{_id(run_id)}/blobs",
                                      content=lambda f=full: open(f, "rb"))  # noqa: SIM115 - closed by Http
            entries.append({"path": rel, "digest": blob["digest"], "size": blob["size"]})
        data = self.http.json("POST", f"/runs/{_id(run_id)}/folders/{_quote(path)}", json={"entries": entries})
        return _artifact(data)

    def log_bytes(self, run_id: str, data: bytes, path: str, media_type: str | None = None) -> Artifact:
        checked = artifact_path(path)
        self._require_run(run_id)
        media = media_type or mimetypes.guess_type(checked)[0] or "application/octet-stream"
        return self._put(run_id, checked, lambda: data, media)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        found = self.http.json("GET", f"/runs/{_id(run_id)}/artifacts", params={"prefix": prefix})
        return [_artifact(a) for a in found]

    def artifact_files(self, run_id: str) -> list[tuple[str, int, str]]:
        return [(f["path"], f["size"], f["digest"]) for f in self.http.json("GET", f"/runs/{_id(run_id)}/artifact-files")]

    def get_artifact(self, run_id: str, path: str) -> Artifact:
        checked = artifact_path(path)
        for artifact in self.list_artifacts(run_id):
            if artifact.path == checked:
                return artifact
        for full, size, digest in self.artifact_files(run_id):
            if full == checked:
                media = mimetypes.guess_type(full)[0] or "application/octet-stream"
                return Artifact(run_id, checked, digest, size, media)
        raise NotFound("artifact", checked)

    def download_artifact(self, run_id: str, path: str, dest: str | Path | None = None, *, force: bool = False) -> Path:
        """Like embedded mode: a file or a folder, written atomically, nothing overwritten
        unless ``force``, nothing written into ``.git`` or onto a device."""
        from conveyor.blobs._checkout import DestinationExists, check_destination

        artifact = self.get_artifact(run_id, path)
        name = Path(artifact.path).name
        target = Path(name) if dest is None else Path(dest)
        if not artifact.is_dir:
            if target.is_dir() and not target.is_symlink():
                target = target / name
            if check_destination(target, Digest.parse(artifact.digest), artifact.size, force=force):
                self._fetch(run_id, artifact.path, Digest.parse(artifact.digest), target, force)
            return target
        manifest = Manifest.from_bytes(self._read(run_id, artifact.path))
        wanted, clashing = [], []
        for entry in manifest.entries:
            file = target / entry.path
            try:
                if check_destination(file, entry.digest, entry.size, force=force):
                    wanted.append((entry, file))
            except DestinationExists:
                clashing.append(file)
        if clashing:
            raise DestinationExists(clashing)
        for entry, file in wanted:
            file.parent.mkdir(parents=True, exist_ok=True)
            self._fetch(run_id, f"{artifact.path}/{entry.path}", entry.digest, file, force)
        target.mkdir(parents=True, exist_ok=True)
        return target

    def _fetch(self, run_id: str, path: str, digest: Digest, target: Path, force: bool) -> None:
        from conveyor.blobs._materialize import copy_to

        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with _uploads.download(self.http, f"/runs/{_id(run_id)}/artifacts/{_quote(path)}") as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                actual = copy_to(_Reader(response.iter_bytes(CHUNK)), target, digest, hashing=True,  # type: ignore[arg-type]
                                 force=force)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"downloading {path!r} from {self.http.url} failed: {exc}") from exc
        if actual is not None and actual != digest:
            raise _errors.CorruptObject(f"{path!r} arrived as {actual}, not {digest}",
                                        hint="download it again")

    def _read(self, run_id: str, path: str) -> bytes:
        return _uploads.read_all(self.http.request("GET", f"/runs/{_id(run_id)}/artifacts/{_quote(path)}"))

    def read_artifact(self, run_id: str, path: str) -> bytes:
        artifact = self.get_artifact(run_id, path)
        if artifact.is_dir:
            raise InvalidInput(f"artifact {path!r} is a folder", field="path", value=path, hint="download it")
        return self._read(run_id, artifact.path)

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


class _Reader:
    """A ``read(n)`` stream over an iterator of byte chunks (what ``copy_to`` reads)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._left) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._left += chunk
        if size < 0:
            out, self._left = self._left, b""
        else:
            out, self._left = self._left[:size], self._left[size:]
        return out

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _param(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _id(run_id: str) -> str:
    if not isinstance(run_id, str) or not run_id.isalnum() or not run_id.isascii() or len(run_id) > 32:
        raise InvalidInput(f"run id {run_id!r} is not valid", field="run_id", value=run_id,
                           hint="run ids are 32 hexadecimal characters")
    return run_id


def _remote_only(what: str) -> ConveyorError:
    return ConveyorError(
        f"{what} is not reachable in remote mode ([server] url is set): this client talks only to the server",
        hint="unset CONVEYOR_SERVER_URL (and [server] url) to work on the stores directly",
    )


__all__ = ["AccessDenied", "RemoteTracker", "ServerUnreachable"]
