"""``conveyor.data`` in remote mode: the same functions and value objects, through a
``conveyor server``'s ``/api/v1/datasets`` and ``/api/v1/lineage`` (no store credentials).

An add hashes locally with the project's stat cache (unchanged files are not read again),
moves the bytes with ``BlobStore`` over :class:`conveyor.blobs._http.HttpBackend` (one
batched existence check, then the missing objects streamed up concurrently) and then asks
the server to record the version: the row is written last, in one transaction, after the
server has checked that every object is stored, so an add cut off at any point leaves no
version. The server profiles tables itself. The record request carries an
``Idempotency-Key``: a retry after a lost answer reports the version it made.
"""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from conveyor.blobs import BlobStore
from conveyor.errors import InvalidInput, NotFound
from conveyor.settings import Settings

from conveyor.data._config import DataSettings
from conveyor.data._profile import table_format
from conveyor.data._refs import DatasetRef, Node, parse_dataset_ref
from conveyor.data._scan import Progress, Stored, store_file, store_folder
from conveyor.data._statcache import StatCache

if TYPE_CHECKING:
    from conveyor.data._lineage import Edge, LineageGraph
    from conveyor.data._types import DatasetVersion

__all__ = ["add", "get_version", "lineage_graph", "list_datasets", "log_input", "record_lineage", "version_of",
           "versions"]


def _seg(value: object) -> str:
    return quote(str(value), safe="")


def version_of(data: dict[str, Any], *, created: bool = False) -> DatasetVersion:
    """A ``DatasetVersion`` from the API's JSON (explicit nulls → the profile's sparse shape)."""
    from conveyor.data._types import DatasetVersion

    profile = data.get("profile")
    if profile is not None:
        profile = {"rows": profile["rows"],
                   "columns": {c: {k: v for k, v in col.items() if v is not None}
                               for c, col in profile["columns"].items()}}
    return DatasetVersion(data["name"], data["version"], data["digest"], data["kind"], data["format"], data["size"],
                          data["file_count"], data["source"], data["created_at"], data["run_id"], profile, created)


# -- reading -------------------------------------------------------------------------------------------
def list_datasets(http: Any) -> list[DatasetVersion]:
    found, params = [], {"max_results": 1000}
    while True:
        page = http.json("GET", "/datasets", params=params)
        found += [version_of(v) for v in page["datasets"]]
        if not page.get("next_page_token"):
            return found
        params["page_token"] = page["next_page_token"]


def get_version(http: Any, ref: str | DatasetRef) -> DatasetVersion:
    parsed = parse_dataset_ref(ref)
    name, number = _seg(parsed.name), parsed.version
    path = f"/datasets/{name}/latest" if number is None else f"/datasets/{name}/versions/{number}"
    return version_of(http.json("GET", path))


def versions(http: Any, name: str) -> list[DatasetVersion]:
    return [version_of(v) for v in http.json("GET", f"/datasets/{_seg(name)}/versions")["versions"]]


def lineage_graph(http: Any, ref: str, direction: str, depth: int | None) -> LineageGraph:
    from conveyor.data._lineage import Edge, LineageGraph
    from conveyor.data._refs import parse_node

    params: dict[str, Any] = {"ref": ref, "direction": direction}
    if depth is not None:
        params["depth"] = depth
    found = http.json("GET", "/lineage", params=params)

    def edge(e: dict[str, Any]) -> Edge:
        return Edge(parse_node(e["upstream"]), parse_node(e["downstream"]), e["relation"], e["created_at"],
                    e["run_id"], e["implied"])

    return LineageGraph(parse_node(found["root"]), tuple(edge(e) for e in found["upstream"]),
                        tuple(edge(e) for e in found["downstream"]))


# -- writing -------------------------------------------------------------------------------------------
def _latest(http: Any, name: str) -> DatasetVersion | None:
    """The latest version, or None: none yet, or one this caller may not read (a name nobody
    granted yet reads as refused; the upload and record requests then decide)."""
    try:
        return get_version(http, DatasetRef(name))
    except NotFound:
        return None
    except PermissionError:  # AccessDenied (tracking's, not imported here)
        return None


def add(http: Any, source: Any, name: str, run_id: str | None, progress: Progress | None) -> DatasetVersion:
    """``conveyor.data.add`` through the server (see the module's docstring)."""
    from conveyor.data._versions import _is_frame

    settings = Settings.load()
    workers = DataSettings.from_section(settings.section("data")).hash_workers  # checked as embedded mode does
    latest = _latest(http, name)
    # Uploads name the data set; reads (a manifest the stat cache remembers) may only reach
    # objects that are some version's own digest of this data set.
    blobs = BlobStore(_backend(http, name))
    fmt: str | None = None
    if _is_frame(source):
        stored, source_text, kind, fmt = _store_frame(blobs, settings, source), "<DataFrame>", "table", "parquet"
    else:
        if not isinstance(source, (str, os.PathLike)):
            raise InvalidInput(f"cannot version a {type(source).__name__}", field="source",
                               value=type(source).__name__, hint="pass a file path, a folder path or a pandas DataFrame")
        path = Path(source)
        if not path.exists():
            raise NotFound("path", str(path), hint="check the path; data add takes a file, a folder or a CSV/Parquet table")
        source_text = str(path.absolute())
        cache = StatCache(settings.conveyor_dir / "data-cache.db")
        if path.is_dir():
            kind = "folder"
            stored = store_folder(blobs, path, cache, workers=workers, progress=progress,
                                  trusted=latest.digest if latest is not None else None)
        else:
            fmt = table_format(path)
            kind = "table" if fmt else "file"
            stored = store_file(blobs, path, cache)
    if latest is not None and latest.digest == str(stored.digest):
        made = _unchanged(latest)
    else:
        body = {"digest": str(stored.digest), "kind": kind, "format": fmt, "source": source_text, "run_id": run_id}
        answer = http.request("POST", f"/datasets/{_seg(name)}/versions", json=body,
                              headers={"Idempotency-Key": uuid.uuid4().hex})
        made = version_of(answer.json(), created=answer.status_code == 201)
    if kind == "folder":  # `data status PATH` without a name compares with this data set
        StatCache(settings.conveyor_dir / "data-cache.db").remember_added(source_text, name)
    return made


def _unchanged(version: DatasetVersion) -> DatasetVersion:
    from dataclasses import replace

    return replace(version, created=False)


def _backend(http: Any, name: str, version: int | None = None) -> Any:
    from conveyor.blobs._http import HttpBackend

    return HttpBackend(http, name, version=version)


def _store_frame(blobs: BlobStore, settings: Settings, frame: Any) -> Stored:
    tmp_dir = settings.conveyor_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"frame-{secrets.token_hex(8)}.parquet"
    try:
        frame.to_parquet(tmp, index=False)
        blob = blobs.put_file(tmp)
    finally:
        tmp.unlink(missing_ok=True)
    return Stored(blob.digest, blob.size, 1, 1)


def log_input(http: Any, ref: DatasetRef, run_id: str | None) -> Edge:
    from conveyor.data._lineage import Edge

    if run_id is None:
        raise InvalidInput("no run to record the input on", field="run_id",
                           hint="pass run_id=, or call inside conveyor.start_run()")
    version = ref.version if ref.version is not None else get_version(http, ref).version
    found = http.json("POST", f"/datasets/{_seg(ref.name)}/versions/{version}/inputs", json={"run_id": run_id})
    return Edge(Node("dataset_version", f"{ref.name}@{version}"), Node("run", run_id), "input",
                found["created_at"], run_id)


def record_lineage(http: Any, edge: Edge) -> Edge:
    body = {"upstream": {"kind": edge.upstream.kind, "id": edge.upstream.id},
            "downstream": {"kind": edge.downstream.kind, "id": edge.downstream.id},
            "relation": edge.relation, "run_id": edge.run_id}
    found = http.json("POST", "/lineage/edges", json=body)
    return type(edge)(edge.upstream, edge.downstream, edge.relation, found["created_at"], edge.run_id)

