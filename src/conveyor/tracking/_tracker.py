"""The explicit tracking API: a ``Tracker`` bound to a metadata store and an artifact store.

The module-level functions (``conveyor.start_run``, ``conveyor.log_metric`` …) are a thin
layer over one default ``Tracker`` built from the settings.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import uuid
from dataclasses import replace
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from conveyor.blobs import MANIFEST_MEDIA_TYPE, BlobStore
from conveyor.entities import Artifact, Experiment, Metric, Run, RunStatus, now_ms
from conveyor.errors import Conflict, InvalidInput, NotFound, StorageError
from conveyor.settings import Settings, StoreSettings, TrackingSettings
from conveyor.store import DEFAULT_EXPERIMENT, Point, Store, search_runs, validate_key
from conveyor.store._retry import is_transient
from conveyor.tracking import _capture
from conveyor.tracking._buffer import MetricBuffer
from conveyor.tracking._downsample import MAX_BUCKETS, Series, downsample
from conveyor.tracking._heartbeat import Heartbeat
from conveyor.tracking._spool import ReplayReport, Spool, replay
from conveyor.tracking._values import artifact_path, metric_step, metric_value

if TYPE_CHECKING:
    import pandas as pd

_log = logging.getLogger("conveyor.tracking")


class Tracker:
    """Record runs into a metadata store and an artifact store.

    Example::

        tracker = Tracker.from_settings(Settings.load())
        run = tracker.create_run("demo")
        tracker.log_metric(run.id, "loss", 0.3, step=1)
        tracker.end_run(run.id)
    """

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        settings: TrackingSettings | None = None,
        *,
        store_settings: StoreSettings | None = None,
        spool_dir: str | Path | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.settings = settings or TrackingSettings()
        #: The store settings this tracker was opened with; pipelines hand them to workers.
        self.store_settings = store_settings or store.settings
        #: The whole settings object when opened with ``from_settings`` (executors read Ray's).
        self.project_settings: Settings | None = None
        self._start_buffering(
            Spool(Path(spool_dir), store) if spool_dir is not None else None,
            Heartbeat(store, interval=self.settings.heartbeat_interval, also=self._replay_own),
        )
        self._experiment_ids: dict[str, int] = {}

    def _start_buffering(self, spool: Spool | None, heartbeat: Heartbeat) -> None:
        """The metric buffer, spool and heartbeat (the same in embedded and remote mode)."""
        self._buffer = MetricBuffer(
            self._write_points, interval=self.settings.flush_interval, batch_size=self.settings.batch_size
        )
        self._spool = spool
        self._heartbeat = heartbeat
        self._known_runs: set[str] = set()
        self._packages_digest: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, create: bool = True, remote: bool = True) -> Tracker:
        """Open the stores the settings name; ``create`` initialises brand-new ones.

        With ``[server] url`` set (and ``remote``), a ``RemoteTracker`` that works through that
        conveyor server instead: the one switch between embedded and remote mode (the server
        itself opens its stores with ``remote=False``).

        Spool files left by processes that died while the store was down are replayed here."""
        if remote and settings.server.url is not None:
            from conveyor.tracking._remote import RemoteTracker

            return RemoteTracker.from_settings(settings)
        store = Store.from_settings(settings, create=create)
        blobs = BlobStore.from_settings(settings)
        if create:
            blobs.init()
        tracker = cls(store, blobs, settings.tracking, store_settings=settings.store, spool_dir=settings.spool_dir)
        tracker.project_settings = settings
        tracker.sync(quiet=True)
        return tracker

    @property
    def s3_endpoint_url(self) -> str | None:
        return self.store_settings.s3_endpoint_url

    def close(self) -> None:
        self._heartbeat.close()
        self._buffer.close()
        if self._spool is not None:
            self._replay_own()
            self._spool.close()
        self._close_backend()

    def _close_backend(self) -> None:
        self.store.close()

    # -- faults ---------------------------------------------------------------------------------------
    @property
    def spool_dir(self) -> Path | None:
        """The folder of this tracker's spool (None: no spool), which the prediction log shares."""
        return self._spool.folder if self._spool is not None else None

    def sync(self, *, quiet: bool = False) -> ReplayReport:
        """Replay spooled writes (this process's and those dead processes left behind)."""
        report = ReplayReport()
        if self._spool is None:
            return report
        try:
            own = self._spool.replay_own()
            report = self._replay_left(self._spool.folder)
        except StorageError:
            if not quiet:
                raise
            return report
        report.add(own)
        return report

    def _replay_left(self, folder: Path) -> ReplayReport:
        """Replay the spool files dead processes left in ``folder``."""
        return replay(self.store, folder)

    #: What ``_replay_own`` says is still unreachable.
    _backend_name = "the metadata store"

    def _replay_own(self) -> None:
        if self._spool is not None and self._spool.pending:
            try:
                self._spool.replay_own()
            except StorageError as exc:
                _log.info("conveyor: %s is still unreachable: %s", self._backend_name, exc)

    def _spool_or_raise(self, exc: StorageError) -> Spool:
        """The spool when ``exc`` is a store that stayed unreachable; else re-raise."""
        if self._spool is None or not (is_transient(exc.__cause__) or is_transient(exc)):
            raise exc
        _log.warning("conveyor: metadata store unreachable (%s); spooling to %s", exc.headline, self._spool.path)
        return self._spool

    # -- experiments ----------------------------------------------------------------------------
    def create_experiment(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Experiment:
        def body(conn: Any) -> int:
            return int(self.store.experiments.create(conn, name, description=description, tags=tags).id)

        # once: a retry after a lost commit acknowledgement must not find "already exists"
        created = self.store.transaction(body, once=True, what=f"creating experiment {name}")
        return self.get_experiment(created)

    def get_experiment(self, name_or_id: str | int) -> Experiment:
        return self.store.query(lambda conn: self.store.experiments.get(conn, name_or_id), what="reading an experiment")

    def list_experiments(self, *, include_archived: bool = False) -> list[Experiment]:
        return self.store.query(lambda conn: self.store.experiments.list(conn, include_archived=include_archived),
                                what="listing experiments")

    def _experiment_id(self, name: str) -> int:
        cached = self._experiment_ids.get(name)
        if cached is not None:
            return cached
        exp_id = self.store.transaction(
            lambda conn: self.store.experiments.get_or_create(conn, name), what="creating an experiment"
        )
        self._experiment_ids[name] = exp_id
        return exp_id

    # -- runs -------------------------------------------------------------------------------------
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
        """Start a RUNNING run in ``experiment`` (created when missing), capturing its context."""
        experiment = experiment or DEFAULT_EXPERIMENT
        exp_id = self._experiment_id(experiment)
        fields: dict[str, Any] = {}
        if capture:
            fields = self._context(cwd)
        run_id = uuid.uuid4().hex  # chosen once: a retried insert finds its own row

        def insert(conn: Any) -> Run:
            if parent_id is not None:
                self.store.runs.require(conn, parent_id)
            if self.store.runs.exists(conn, run_id):  # an earlier attempt committed
                return self.store.runs.get(conn, run_id)
            run = self.store.runs.insert(
                conn, exp_id, experiment, name=name, parent_id=parent_id, id=run_id, **fields
            )
            if tags:
                self.store.runs.set_tags(conn, run.id, tags)
                run = replace(run, tags={k: str(v) for k, v in tags.items()})
            return run

        # not synced (like metric batches): a run start lost to a power cut leaves nothing
        # that its params or artifacts (which are synced) could point at yet
        run: Run = self.store.transaction(insert, durable=False, what="creating a run")
        self._known_runs.add(run.id)
        self._heartbeat.add(run.id)
        return run

    def _context(self, cwd: str | Path | None) -> dict[str, Any]:
        user, host = _capture.user_and_host()
        entry, command = _capture.entry_point()
        fields: dict[str, Any] = {
            "user": user,
            "host": host,
            "entry_point": entry,
            "command": command,
            "python_version": _capture.python_version(),
        }
        if self.settings.capture_git:
            git = _capture.git_info(str(Path(cwd or Path.cwd()).resolve()))
            fields.update(git_commit=git.commit, git_branch=git.branch, git_dirty=git.dirty)
        if self.settings.capture_packages:
            fields["packages_digest"] = self._packages()
        return fields

    def _packages(self) -> str:
        if self._packages_digest is None:
            blob = self.blobs.put_bytes(_capture.installed_packages().encode())
            self._packages_digest = str(blob.digest)
        return self._packages_digest

    def end_run(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, *, error: str | None = None) -> None:
        """Flush the run's metrics, then record its end. Ending twice raises ``Conflict``."""
        status = RunStatus(status)
        attempts = [0]

        def write_and_end(points: Sequence[Point]) -> None:
            batch = uuid.uuid4().hex

            def body(conn: Any) -> None:
                # one transaction: the last points and the end are committed together
                attempts[0] += 1
                self.store.metrics.write_batch(conn, batch, points)
                if attempts[0] > 1 and self.store.runs.require(conn, run_id).status == status.value:
                    return  # the first attempt committed; its acknowledgement was lost
                self.store.runs.end(conn, run_id, status, error=error)

            try:
                self.store.transaction(body, durable=False, what="ending the run")
            except StorageError as exc:
                spool = self._spool_or_raise(exc)
                if points:
                    spool.add_metrics(batch, points)
                spool.add_end(run_id, status, error)

        self._buffer.drain_into(write_and_end, always=True)
        self._heartbeat.discard(run_id)

    def get_run(self, run_id: str) -> Run:
        self._buffer.flush()

        def body(conn: Any) -> Run:
            metrics = self.store.metrics.latest_of(conn, [run_id]).get(run_id, {})
            return self.store.runs.get(conn, run_id, metrics=metrics)

        return self.store.query(body, what=f"reading run {run_id}")

    def delete_runs(self, run_ids: Sequence[str]) -> None:
        """Mark runs deleted (``restore_runs`` undoes it; ``gc`` purges them for good)."""
        self.store.transaction(lambda conn: self.store.runs.set_deleted(conn, run_ids, True), what="deleting runs")

    def restore_runs(self, run_ids: Sequence[str]) -> None:
        self.store.transaction(lambda conn: self.store.runs.set_deleted(conn, run_ids, False), what="restoring runs")

    def _require_run(self, run_id: str) -> None:
        if run_id in self._known_runs:
            return
        if not isinstance(run_id, str):
            raise InvalidInput(f"run id {run_id!r} is not a string", field="run_id", value=run_id)
        row = self.store.query(lambda conn: self.store.runs.require(conn, run_id), what=f"reading run {run_id}")
        if row.deleted_at is not None:
            raise Conflict(f"run {run_id} is deleted; restore it before logging to it")
        self._known_runs.add(run_id)

    # -- params, tags, metrics -----------------------------------------------------------------------
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Durable once it returns; retried through a database blink (the same value again is a no-op)."""
        self.store.transaction(lambda conn: self.store.runs.log_params(conn, run_id, params), what="logging params")

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.store.transaction(lambda conn: self.store.runs.set_tags(conn, run_id, tags), what="setting tags")

    def delete_tag(self, run_id: str, key: str) -> None:
        self.store.transaction(lambda conn: self.store.runs.delete_tag(conn, run_id, key), once=True, what="deleting a tag")

    def log_metric(
        self, run_id: str, key: str, value: Any, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Buffer one point (no I/O on the caller's thread once the run is known)."""
        self._require_run(run_id)
        validate_key("metric", key)
        self._buffer.add((run_id, key, metric_value(key, value), metric_step(key, step), timestamp or now_ms()))

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, Any], step: int | None = None, timestamp: int | None = None
    ) -> None:
        self._require_run(run_id)
        stamp = timestamp or now_ms()
        points: list[Point] = []
        for key, value in metrics.items():
            validate_key("metric", key)
            points.append((run_id, key, metric_value(key, value), metric_step(key, step), stamp))
        self._buffer.extend(points)

    def flush(self) -> None:
        """Write every buffered metric point now."""
        self._buffer.flush()

    def _write_points(self, points: Sequence[Point]) -> None:
        """One batch, written at most once under its id (retries and replays included); when
        the store stays unreachable the batch goes to the spool instead of being dropped."""
        batch = uuid.uuid4().hex
        try:
            self.store.transaction(
                lambda conn: self.store.metrics.write_batch(conn, batch, points), durable=False, what="writing metrics"
            )
        except StorageError as exc:
            self._spool_or_raise(exc).add_metrics(batch, points)
            return
        self._replay_own()

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        self._buffer.flush()

        def body(conn: Any) -> list[Metric]:
            self.store.runs.require(conn, run_id)
            return self.store.metrics.history(conn, run_id, key)

        return self.store.query(body, what=f"reading metric {key!r} of run {run_id}")

    def metric_series(
        self, run_id: str, key: str, *, x: str = "step", buckets: int = 1000,
        lo: float | None = None, hi: float | None = None,
    ) -> Series:
        """A metric's history for a chart: at most ``buckets`` min/max/mean buckets over
        ``x`` ("step" or "time", milliseconds since the epoch) between ``lo`` and ``hi``.

        A range of at most ``buckets`` points is read as is; a longer one is aggregated by
        the database (GROUP BY bucket: min, max, mean of the values, mean x, count), so a
        history of 1,000,000 points is never loaded into Python. The buckets are the ones
        :func:`conveyor.tracking.downsample` makes from the same points.
        """
        import math

        from sqlalchemy import and_, func, literal, select

        from conveyor.store import metrics

        if x not in ("step", "time"):
            raise InvalidInput(f"unknown x axis {x!r}", field="x", value=x, hint="'step' or 'time'")
        if isinstance(buckets, bool) or not isinstance(buckets, int) or not 1 <= buckets <= MAX_BUCKETS:
            raise InvalidInput(f"buckets must be a whole number from 1 to {MAX_BUCKETS}, not {buckets!r}",
                               field="buckets", value=buckets)
        for name, bound in (("lo", lo), ("hi", hi)):
            if bound is not None and not math.isfinite(bound):
                raise InvalidInput(f"{name} must be a finite number, not {bound!r}", field=name, value=bound)
        self._buffer.flush()
        column = metrics.c.step if x == "step" else metrics.c.timestamp
        mine = and_(metrics.c.run_id == run_id, metrics.c.key == key)

        def body(conn: Any) -> Any:
            self.store.runs.require(conn, run_id)
            total, first, last = conn.execute(select(func.count(), func.min(column), func.max(column)).where(mine)).one()
            if not total:
                raise NotFound("metric", key, hint=f"run {run_id} has no metric of that name")
            where = mine
            count, low_x, high_x = total, int(first), int(last)
            if lo is not None or hi is not None:
                # x values are whole numbers: the range is [ceil(lo), floor(hi)]
                if lo is not None:
                    where = and_(where, column >= math.ceil(lo))
                if hi is not None:
                    where = and_(where, column <= math.floor(hi))
                count, low_x, high_x = conn.execute(select(func.count(), func.min(column), func.max(column)).where(where)).one()
                if not count:
                    return Series([], [], [], [], 0, int(total), True)
                low_x, high_x = int(low_x), int(high_x)
            if count <= buckets:
                order = [column, metrics.c.step, metrics.c.timestamp, metrics.c.id]
                rows = conn.execute(select(column, metrics.c.value).where(where).order_by(*order)).all()
                xs = [float(r[0]) for r in rows]
                ys = [math.nan if r[1] is None else float(r[1]) for r in rows]
                return Series(xs, ys, ys, ys, len(rows), int(total), True)
            span = high_x - low_x
            if span == 0:
                bucket = literal(0)
            else:
                # the pure function's bucket: floor((x - first) / span * buckets), the last x in the
                # last bucket; computed in integers (exact in both SQLite and PostgreSQL)
                raw = ((column - low_x) * buckets) // span
                bucket = func.min(raw, buckets - 1) if conn.dialect.name == "sqlite" else func.least(raw, buckets - 1)
            bucket = bucket.label("bucket")
            query = (
                select(bucket, func.avg(column), func.avg(metrics.c.value), func.min(metrics.c.value),
                       func.max(metrics.c.value))
                .where(where).group_by(bucket).order_by(bucket)
            )
            return conn.execute(query).all(), count, total

        found = self.store.query(body, what=f"reading metric {key!r} of run {run_id}")
        if isinstance(found, Series):
            return found
        rows, count, total = found
        nan = math.nan
        return Series(
            [float(r[1]) for r in rows],
            [nan if r[2] is None else float(r[2]) for r in rows],
            [nan if r[3] is None else float(r[3]) for r in rows],
            [nan if r[4] is None else float(r[4]) for r in rows],
            int(count), int(total), False,
        )

    # -- artifacts ----------------------------------------------------------------------------------------
    def log_artifact(self, run_id: str, local_path: str | Path, artifact_path_: str | None = None) -> Artifact:
        """Store a file (or a folder, as a manifest) under ``artifact_path_/<name>``."""
        source = Path(local_path)
        if source.is_dir():
            return self.log_artifacts(run_id, source, artifact_path_ or source.name)
        if not source.is_file():
            raise NotFound("file", str(source))
        path = artifact_path(artifact_path_, source.name)
        self._require_run(run_id)
        media = mimetypes.guess_type(source.name)[0] or "application/octet-stream"
        return self._log_file(run_id, path, source, media)

    def _log_file(self, run_id: str, path: str, source: Path, media: str) -> Artifact:
        """Store one checked file as ``path`` of the run (the remote tracker sends it instead)."""
        blob = self.blobs.put_file(source)
        return self._record(Artifact(run_id, path, str(blob.digest), blob.size, media))

    def log_artifacts(self, run_id: str, local_dir: str | Path, artifact_path_: str | None = None) -> Artifact:
        """Store a folder as one manifest object under ``artifact_path_`` (default: its name)."""
        source = Path(local_dir)
        if not source.is_dir():
            raise NotFound("folder", str(source))
        path = artifact_path(artifact_path_ or source.name)
        self._require_run(run_id)
        blob = self.blobs.put_tree(source)
        manifest = self.blobs.read_manifest(blob.digest)
        return self._record(Artifact(run_id, path, str(blob.digest), manifest.total_size, MANIFEST_MEDIA_TYPE, True))

    def log_bytes(self, run_id: str, data: bytes, path: str, media_type: str | None = None) -> Artifact:
        checked = artifact_path(path)
        self._require_run(run_id)
        blob = self.blobs.put_bytes(data)
        media = media_type or mimetypes.guess_type(checked)[0] or "application/octet-stream"
        return self._record(Artifact(run_id, checked, str(blob.digest), blob.size, media))

    def log_text(self, run_id: str, text: str, path: str) -> Artifact:
        return self.log_bytes(run_id, text.encode("utf-8"), path, "text/plain; charset=utf-8")

    def log_dict(self, run_id: str, data: Any, path: str) -> Artifact:
        """JSON (or YAML when ``path`` ends in .yaml/.yml and PyYAML is installed)."""
        if path.endswith((".yaml", ".yml")):
            import yaml  # type: ignore[import-untyped]

            return self.log_bytes(run_id, yaml.safe_dump(data).encode(), path, "application/yaml")
        body = json.dumps(data, indent=2, sort_keys=True, default=str, allow_nan=True)
        return self.log_bytes(run_id, body.encode(), path, "application/json")

    def log_figure(self, run_id: str, figure: Any, path: str) -> Artifact:
        """A matplotlib figure (or anything with ``savefig``), as PNG unless ``path`` says otherwise."""
        import io

        if not hasattr(figure, "savefig"):
            raise InvalidInput(
                f"cannot log a {type(figure).__name__} as a figure",
                field="figure",
                value=type(figure).__name__,
                hint="pass a matplotlib Figure",
            )
        suffix = Path(path).suffix.lstrip(".") or "png"
        buffer = io.BytesIO()
        figure.savefig(buffer, format=suffix, bbox_inches="tight")
        return self.log_bytes(run_id, buffer.getvalue(), path if Path(path).suffix else f"{path}.png")

    def _record(self, artifact: Artifact) -> Artifact:
        def body(conn: Any) -> None:
            self.store.runs.require(conn, artifact.run_id)
            self.store.artifacts.record(conn, artifact)  # an upsert: safe to retry

        self.store.transaction(body, what="recording an artifact")
        return artifact

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:

        def body(conn: Any) -> list[Artifact]:
            self.store.runs.require(conn, run_id)
            return self.store.artifacts.list(conn, run_id, prefix)

        return self.store.query(body, what=f"listing the artifacts of run {run_id}")

    def artifact_files(self, run_id: str) -> list[tuple[str, int, str]]:
        """Every file of the run's artifacts as (path, size, digest), folders expanded."""
        from conveyor.blobs import Digest

        rows = []
        for a in self.list_artifacts(run_id):
            if a.is_dir:
                for entry in self.blobs.read_manifest(Digest.parse(a.digest)).entries:
                    rows.append((f"{a.path}/{entry.path}", entry.size, str(entry.digest)))
            else:
                rows.append((a.path, a.size, a.digest))
        return rows

    def get_artifact(self, run_id: str, path: str) -> Artifact:
        """A logged artifact, or a file inside a logged folder (``model/conveyor-model.json``,
        as ``conveyor artifacts list`` shows it)."""
        checked = artifact_path(path)

        def body(conn: Any) -> Artifact | tuple[list[Artifact], NotFound]:
            try:
                return self.store.artifacts.get(conn, run_id, checked)
            except NotFound as missing:
                return [a for a in self.store.artifacts.list(conn, run_id) if a.is_dir], missing

        found = self.store.query(body, what=f"reading artifact {checked!r} of run {run_id}")
        if isinstance(found, Artifact):
            return found
        folders, not_found = found
        from conveyor.blobs import Digest

        for folder in sorted(folders, key=lambda a: len(a.path), reverse=True):
            if not checked.startswith(folder.path + "/"):
                continue
            inner = checked[len(folder.path) + 1 :]
            for entry in self.blobs.read_manifest(Digest.parse(folder.digest)).entries:
                if entry.path == inner:
                    media = mimetypes.guess_type(inner)[0] or "application/octet-stream"
                    return Artifact(run_id, checked, str(entry.digest), entry.size, media)
        raise not_found

    def download_artifact(self, run_id: str, path: str, dest: str | Path | None = None, *, force: bool = False) -> Path:
        """Copy an artifact (file or folder) to ``dest``; returns the written path.

        ``dest`` defaults to a new file or folder named after the artifact in the working
        directory. Existing files with other bytes are never overwritten unless ``force``
        (``DestinationExists``); nothing is written into ``.git`` or onto a device.
        """
        artifact = self.get_artifact(run_id, path)
        from conveyor.blobs import Digest

        digest = Digest.parse(artifact.digest)
        name = Path(artifact.path).name
        target = Path(name) if dest is None else Path(dest)
        if artifact.is_dir:
            self.blobs.get_tree(digest, target, force=force)
        else:
            if target.is_dir() and not target.is_symlink():
                target = target / name
            self.blobs.get_file(digest, target, force=force)
        return target

    def read_artifact(self, run_id: str, path: str) -> bytes:
        from conveyor.blobs import Digest

        artifact = self.get_artifact(run_id, path)
        if artifact.is_dir:
            raise InvalidInput(f"artifact {path!r} is a folder", field="path", value=path, hint="download it")
        return self.blobs.read_bytes(Digest.parse(artifact.digest))

    # -- search ----------------------------------------------------------------------------------------------
    @overload
    def search_runs(
        self,
        experiments: str | Sequence[str] | None = ...,
        filter: str = ...,
        order_by: Sequence[str] = ...,
        max_results: int | None = ...,
        *,
        output: Literal["frame"] = ...,
        include_deleted: bool = ...,
    ) -> pd.DataFrame: ...

    @overload
    def search_runs(
        self,
        experiments: str | Sequence[str] | None = ...,
        filter: str = ...,
        order_by: Sequence[str] = ...,
        max_results: int | None = ...,
        *,
        output: Literal["runs"],
        include_deleted: bool = ...,
    ) -> list[Run]: ...

    def search_runs(
        self,
        experiments: str | Sequence[str] | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int | None = None,
        *,
        output: Literal["frame", "runs"] = "frame",
        include_deleted: bool = False,
    ) -> pd.DataFrame | list[Run]:
        """Runs matching a filter such as ``"metrics.acc > 0.9 and params.model = 'rf'"``.

        Returns a pandas DataFrame (one row per run, ``metrics.*``, ``params.*`` and ``tags.*``
        columns) or, with ``output="runs"``, a list of ``Run`` objects.
        """
        self._buffer.flush()
        if isinstance(order_by, str):
            order_by = [order_by]

        def body(conn: Any) -> list[Run]:
            ids: list[int] | None = None
            if experiments is not None:
                names = [experiments] if isinstance(experiments, str) else list(experiments)
                ids = [self.store.experiments.get(conn, n).id for n in names]
            return search_runs(
                conn,
                experiment_ids=ids,
                filter=filter,
                order_by=order_by,
                max_results=max_results,
                include_deleted=include_deleted,
                timeout=self.settings.search_timeout,
            )

        runs = self.store.query(body, what="searching runs")  # a read: retried through a blink
        if output == "runs":
            return runs
        if output != "frame":
            raise InvalidInput(f"unknown output {output!r}", field="output", value=output, hint="'frame' or 'runs'")
        from conveyor.tracking._frame import runs_frame

        return runs_frame(runs)
