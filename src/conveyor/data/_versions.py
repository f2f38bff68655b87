"""Adding, finding and materializing data set versions."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.blobs import Digest
from conveyor.entities import now_ms
from conveyor.errors import Conflict, InvalidInput, NotFound
from conveyor.settings import Settings
from conveyor.store import DatasetRepo

from conveyor.data._config import DataSettings
from conveyor.data._context import Stores, active_run_id, remote_http, resolve
from conveyor.data._lineage import Edge, record_edges
from conveyor.data._profile import profile_frame, read_table, table_format
from conveyor.data._refs import DatasetRef, Node, check_name, parse_dataset_ref
from conveyor.data._scan import Progress, Stored, store_file, store_folder
from conveyor.data._statcache import StatCache

if TYPE_CHECKING:
    import pandas as pd

    from conveyor.data._types import DatasetVersion

__all__ = ["add", "data_settings", "get_version", "list_datasets", "log_input", "record_stored", "versions"]

_repo = DatasetRepo()
_WRITE_ATTEMPTS = 8


def _settings(stores: Stores | None) -> Settings:
    # Explicit Stores may carry settings; otherwise read them each time (a small TOML file):
    # the default stores are cached per project, but conveyor.toml may change meanwhile.
    if stores is not None and stores.settings is not None:
        return stores.settings
    return Settings.load()


def data_settings(tracker: Any = None) -> DataSettings:
    """The validated ``[data]`` table of the project's conveyor.toml."""
    local = tracker is not None and remote_http(tracker) is None
    return DataSettings.from_section(_settings(resolve(tracker) if local else None).section("data"))


def _is_frame(obj: object) -> bool:
    return type(obj).__module__.startswith("pandas") and type(obj).__name__ == "DataFrame"


def add(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    name: str,
    tracker: Any = None,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> DatasetVersion:
    """Version a file, a folder, a CSV/Parquet table or a DataFrame under ``name``.

    Returns the new version, or the latest one with ``created=False`` when the content is
    unchanged. Files whose size, mtime and inode are unchanged since the last add are not
    read again. ``run_id`` (default: the active run, if any) records the run as producer.

    Example::

        >>> v = conveyor.data.add("data/images/", name="images")  # doctest: +SKIP
        >>> v.ref, v.file_count, v.created  # doctest: +SKIP
        ('data:/images@1', 10000, True)
    """
    check_name(name)
    if (http := remote_http(tracker)) is not None:
        from conveyor.data import _remote

        return _remote.add(http, source, name, run_id if run_id is not None else active_run_id(), progress)
    stores = resolve(tracker)
    blobs = stores.need_blobs()
    settings = _settings(stores)
    config = DataSettings.from_section(settings.section("data"))
    cache = StatCache(settings.conveyor_dir / "data-cache.db")
    fmt: str | None = None
    if _is_frame(source):
        stored, source_text = _store_frame(stores, settings, source), "<DataFrame>"
        frame: Any = source
        kind, fmt = "table", "parquet"
    else:
        if not isinstance(source, (str, os.PathLike)):
            raise InvalidInput(
                f"cannot version a {type(source).__name__}", field="source", value=type(source).__name__,
                hint="pass a file path, a folder path or a pandas DataFrame",
            )
        path = Path(source)
        if not path.exists():
            raise NotFound("path", str(path), hint="check the path; data add takes a file, a folder or a CSV/Parquet table")
        source_text = str(path.absolute())
        frame = None
        if path.is_dir():
            kind = "folder"
            before = stores.store.query(lambda conn: _repo.latest(conn, name),
                                        what=f"reading the latest version of data set {name}")
            stored = store_folder(
                blobs, path, cache, workers=config.hash_workers, progress=progress,
                trusted=before.digest if before is not None else None,
            )
        else:
            fmt = table_format(path)
            kind = "table" if fmt else "file"
            stored = store_file(blobs, path, cache)
    run_id = run_id if run_id is not None else active_run_id()
    made = _record(stores, name, stored, kind, fmt, source_text, run_id, frame)
    if kind == "folder":  # `data status PATH` without a name, on any metadata store
        cache.remember_added(source_text, name)
    return made


def _record(
    stores: Stores, name: str, stored: Stored, kind: str, fmt: str | None, source_text: str, run_id: str | None,
    frame: Any, receipt: str | None = None,
) -> DatasetVersion:
    """The version row for bytes already stored (written last: nothing half-made before).

    ``receipt``: a token kept in ``write_receipts`` in the version's own transaction; the
    same token again (a retried request, on any server process, after a restart) reports
    the version the first one made, ``created`` as it was then."""
    blobs = stores.need_blobs()
    profile: dict[str, Any] | None = None
    def read_latest(conn: Any) -> tuple[DatasetVersion | None, Any]:
        if receipt is not None and (done := _receipt_result(conn, receipt)) is not None:
            return _from_receipt(conn, name, done), None
        return None, _repo.latest(conn, name)

    first, latest = stores.store.query(read_latest, what=f"reading the latest version of data set {name}")
    if first is not None:
        return first
    if latest is not None and latest.digest == str(stored.digest):
        if receipt is not None:  # a retry reports this answer even after a later version
            return _keep_unchanged(stores, name, int(latest.version), receipt)
        return _unchanged(latest)
    if kind == "table":
        if frame is None:
            with blobs.open_read(stored.digest) as stream:
                frame = read_table(stream, fmt or "csv")
        profile = profile_frame(frame)
    values = {
        "digest": str(stored.digest), "kind": kind, "format": fmt, "size": stored.size,
        "file_count": stored.file_count, "source": source_text,
        "profile": json.dumps(profile, sort_keys=True, allow_nan=False) if profile is not None else None,
        "run_id": run_id,
    }
    return _insert(stores, name, values, run_id, receipt)


def _receipt_result(conn: Any, token: str) -> list[Any] | None:
    """The ``[version, created]`` a receipt recorded, or None."""
    from sqlalchemy import select

    from conveyor.store import write_receipts

    row = conn.execute(select(write_receipts.c.result).where(write_receipts.c.token == token)).first()
    return None if row is None or row.result is None else list(json.loads(row.result))


def _keep_unchanged(stores: Stores, name: str, version: int, receipt: str) -> DatasetVersion:
    def body(conn: Any) -> list[Any]:
        if (done := _receipt_result(conn, receipt)) is not None:
            return done
        _keep_receipt(conn, receipt, [version, False])
        return [version, False]

    for attempt in range(_WRITE_ATTEMPTS):
        try:
            done = stores.store.transaction(body, what=f"recording a request on data set {name}")
            with stores.store.read() as conn:
                return _from_receipt(conn, name, done)
        except Conflict:
            if attempt == _WRITE_ATTEMPTS - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def _keep_receipt(conn: Any, token: str, result: list[Any]) -> None:
    from sqlalchemy.exc import IntegrityError

    from conveyor.store import write_receipts

    try:
        with conn.begin_nested():
            conn.execute(write_receipts.insert().values(token=token, at=now_ms(), result=json.dumps(result)))
    except IntegrityError as exc:  # the same request at the same time on another process: it won
        raise Conflict("the same request was recorded concurrently", hint="retry") from exc


def _from_receipt(conn: Any, name: str, done: list[Any]) -> DatasetVersion:
    from conveyor.data._types import DatasetVersion

    return DatasetVersion.from_row(_repo.get(conn, name, int(done[0])), created=bool(done[1]))


_KINDS = ("file", "folder", "table")
_FORMATS = ("csv", "parquet")


def record_stored(
    stores: Stores, name: str, digest: str, kind: str, fmt: str | None, source: str, run_id: str | None,
    receipt: str | None = None,
) -> DatasetVersion:
    """A version of bytes a client already put in the artifact store (remote mode's add, run
    by the server): the object (and, for a folder, every file its manifest lists) must be
    stored; size and file count come from the store, never from the client. ``receipt``
    (a request's idempotency token): see ``_record``."""
    check_name(name)
    blobs = stores.need_blobs()
    parsed = Digest.parse(digest)
    if kind not in _KINDS:
        raise InvalidInput(f"unknown data set kind {kind!r}", field="kind", value=kind, hint="file, folder or table")
    if (kind == "table") != (fmt is not None) or (fmt is not None and fmt not in _FORMATS):
        raise InvalidInput(f"format {fmt!r} does not fit kind {kind!r}", field="format", value=fmt,
                           hint="tables are csv or parquet; files and folders have no format")
    if not blobs.exists(parsed):
        raise InvalidInput(f"object {digest} was not uploaded", field="digest", value=digest,
                           hint="upload it to /api/v1/datasets/{name}/blobs/{digest} first")
    if kind == "folder":
        manifest = blobs.read_manifest(parsed)  # validated: paths, order, entries
        missing = {e.pack or e.digest for e in blobs.missing_entries(manifest.entries)}
        if missing:
            raise InvalidInput(f"{len(missing)} object(s) of manifest {digest} were not uploaded, e.g. "
                               f"{min(map(str, missing))}", field="digest", value=digest,
                               hint="upload every file before the version")
        stored = Stored(parsed, manifest.total_size, len(manifest.entries), 0)
    else:
        stored = Stored(parsed, blobs.size(parsed), 1, 0)
    return _record(stores, name, stored, kind, fmt, source, run_id, None, receipt)


def _unchanged(row: Any) -> DatasetVersion:
    from conveyor.data._types import DatasetVersion

    return DatasetVersion.from_row(row, created=False)


def _insert(
    stores: Stores, name: str, values: dict[str, Any], run_id: str | None, receipt: str | None = None
) -> DatasetVersion:
    from conveyor.data._types import DatasetVersion

    def body(conn: Any) -> list[Any]:
        if receipt is None:
            return make(conn)
        if (done := _receipt_result(conn, receipt)) is not None:
            return done  # the same request, committed by another attempt or server process
        result = make(conn)
        _keep_receipt(conn, receipt, result)
        return result

    def make(conn: Any) -> list[Any]:
        """[version, created]: the new version, or the latest when it already holds these bytes."""
        latest = _repo.latest(conn, name)
        if latest is not None and latest.digest == values["digest"]:
            return [int(latest.version), False]  # a concurrent add won
        created = now_ms()
        dataset_id = _repo.dataset_id(conn, name, create_at=created)
        assert dataset_id is not None
        version = (latest.version if latest is not None else 0) + 1
        _repo.insert(conn, dataset_id, version, {**values, "created_at": created})
        if run_id is not None:
            node = Node("dataset_version", f"{name}@{version}")
            record_edges(conn, [Edge(Node("run", run_id), node, "produced", created, run_id)])
        return [int(version), True]

    for attempt in range(_WRITE_ATTEMPTS):
        try:
            # retried through a database blink; once: a retry after a lost commit
            # acknowledgement reports the version it made instead of finding it "unchanged"
            # with a request's receipt its row is the once-token (checked inside the transaction)
            number, created = stores.store.transaction(body, once=receipt is None,
                                                       what=f"adding a version of data set {name}")
            row = stores.store.query(lambda conn: _repo.get(conn, name, number),
                                     what=f"reading version {number} of data set {name}")
            return DatasetVersion.from_row(row, created=created)
        except Conflict:
            if attempt == _WRITE_ATTEMPTS - 1:
                raise Conflict(
                    f"data set {name!r} kept changing while a version was added", hint="retry the add"
                ) from None
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def _store_frame(stores: Stores, settings: Settings, frame: Any) -> Stored:
    tmp_dir = settings.conveyor_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"frame-{secrets.token_hex(8)}.parquet"
    try:
        frame.to_parquet(tmp, index=False)
        blob = stores.need_blobs().put_file(tmp)
    finally:
        tmp.unlink(missing_ok=True)
    return Stored(blob.digest, blob.size, 1, 1)


def get_version(ref: str | DatasetRef, *, tracker: Any = None) -> DatasetVersion:
    """The version a reference names (``name`` alone = the latest); ``NotFound`` otherwise.

    Example::

        >>> conveyor.data.get_version("images@1").file_count  # doctest: +SKIP
        10000
    """
    from conveyor.data._types import DatasetVersion

    parsed = parse_dataset_ref(ref)
    if (http := remote_http(tracker)) is not None:
        from conveyor.data import _remote

        return _remote.get_version(http, parsed)  # type: ignore[no-any-return]
    row = resolve(tracker).store.query(lambda conn: _repo.get(conn, parsed.name, parsed.version),
                                       what=f"reading a version of data set {parsed.name}")
    return DatasetVersion.from_row(row)


def versions(name: str, *, tracker: Any = None) -> list[DatasetVersion]:
    """Every version of a data set, oldest first."""
    from conveyor.data._types import DatasetVersion

    if (http := remote_http(tracker)) is not None:
        from conveyor.data import _remote

        return _remote.versions(http, check_name(name))  # type: ignore[no-any-return]
    name = check_name(name)
    rows = resolve(tracker).store.query(lambda conn: list(_repo.versions(conn, name)),
                                        what=f"listing the versions of data set {name}")
    return [DatasetVersion.from_row(r) for r in rows]


def list_datasets(*, tracker: Any = None) -> list[DatasetVersion]:
    """The latest version of every data set, by name."""
    from conveyor.data._types import DatasetVersion

    if (http := remote_http(tracker)) is not None:
        from conveyor.data import _remote

        return _remote.list_datasets(http)  # type: ignore[no-any-return]
    rows = resolve(tracker).store.query(lambda conn: list(_repo.list_latest(conn)), what="listing data sets")
    return [DatasetVersion.from_row(r) for r in rows]


def log_input(ref: str | DatasetRef, run_id: str | None = None, *, tracker: Any = None) -> Edge:
    """Record that a run (default: the active run) read a data set version.

    Example::

        >>> with conveyor.start_run():  # doctest: +SKIP
        ...     conveyor.data.log_input("train@3")
    """
    run_id = run_id if run_id is not None else active_run_id()
    if run_id is None:
        raise InvalidInput(
            "no run to record the input on", field="run_id", hint="pass run_id=, or call inside conveyor.start_run()"
        )
    if (http := remote_http(tracker)) is not None:
        from conveyor.data import _remote

        return _remote.log_input(http, parse_dataset_ref(ref), run_id)  # type: ignore[no-any-return]
    version = get_version(ref, tracker=tracker)
    edge = Edge(Node("dataset_version", f"{version.name}@{version.version}"), Node("run", run_id), "input", now_ms(), run_id)
    store = resolve(tracker).store
    store.transaction(lambda conn: record_edges(conn, [edge]), what="recording a data input")
    return edge


def digest_of(version: DatasetVersion) -> Digest:
    return Digest.parse(version.digest)
