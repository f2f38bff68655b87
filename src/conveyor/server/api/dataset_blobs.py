"""``/api/v1/datasets/{name}/blobs``: the objects of a data set, for remote mode's
``conveyor.data`` (``conveyor.blobs._http.HttpBackend`` is the client).

- ``POST …/blobs/missing``: which of up to 10,000 digests the artifact store lacks.
- ``PUT …/blobs/{digest}``: one object, streamed to a temporary file (bounded size) while
  hashed; bytes that do not hash to ``digest`` are refused and nothing is stored.
- ``GET``/``HEAD …/blobs/{digest}?version=N``: one object, streamed, when it belongs to the
  data set: the version's own digest or an entry of its manifest (without ``version``: the
  own digest of some version). Anything else is a 404, whether it is stored or not.

Permission: uploading and asking what is missing need ``edit`` on the data set (for a name
that does not exist yet, the right to create one); downloading needs ``read``.
"""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from typing import IO, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from conveyor.blobs import Digest
from conveyor.errors import ConveyorError, NotFound
from conveyor.server import _possession as possession
from conveyor.server.api import _deps
from conveyor.server.api._errors import ApiV1Error
from conveyor.server.api._models import BlobOut, _Body, _Out, json_response
from conveyor.server.api.artifacts import _chunks, _open, _range
from conveyor.server.api.artifacts import _spool as spool_body

router = APIRouter(prefix="/datasets/{name}/blobs", tags=["datasets"])

MAX_DIGESTS = 10_000
DatasetName = Path(..., description="Data set name.", min_length=1, max_length=128)
DigestText = Path(..., description="blake3:<64 hexadecimal characters>", min_length=7, max_length=80)
_OCTETS = {"requestBody": {"required": True, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}}}}


class DigestList(_Body):
    digests: list[str] = Field(max_length=MAX_DIGESTS, description="Digests to look for (blake3:<hex>).")


class MissingOut(_Out):
    missing: list[str] = Field(description="Those of the digests the artifact store does not hold.")


def _name(name: str) -> str:
    from conveyor.data._refs import check_name

    return check_name(name)


def _digest(text: str, field: str = "digest") -> Digest:
    try:
        return Digest.parse(text)
    except ConveyorError:
        raise ApiV1Error("INVALID", f"{text[:100]!r} is not a digest (blake3:<64 hex characters>)",
                         field=field) from None


def writable(request: Request, name: str) -> bool:
    """Authorize a write to data set ``name``; True when it does not exist yet (the caller
    then needs the right to create one, and becomes its manager when a version is made)."""
    from conveyor.store import DatasetRepo

    store = _deps.tracker(request).store
    with store.read() as conn:
        new = DatasetRepo().dataset_id(conn, name) is None
    _deps.authorize(request, "data", None if new else name, "edit")
    return new


@router.post("/missing", response_model=MissingOut, summary="Which of these objects the server lacks")
def missing(request: Request, body: DigestList, name: str = DatasetName) -> Response:
    writable(request, _name(name))
    wanted = {_digest(d, "digests"): d for d in body.digests}
    present = _deps.tracker(request).blobs.exists_many(wanted)
    # "Missing" also for what the caller may not reference: they upload it, and learn nothing.
    present = possession.held(request, present, lambda _: dataset_objects(request, name))
    return json_response(MissingOut(missing=sorted(str(d) for d in wanted if d not in present)))


#: Folder versions (newest first) whose files a writer of the data set may reference unsent.
_FOLDER_VERSIONS = 5


def dataset_objects(request: Request, name: str) -> set[str]:
    """The objects of data set ``name``'s versions (each version's own digest, and the files
    of its newest folder versions): what a caller who may read it may reference unsent."""
    from conveyor.store import DatasetRepo

    tracker = _deps.tracker(request)
    with tracker.store.read() as conn:
        rows = DatasetRepo().versions(conn, name) if DatasetRepo().dataset_id(conn, name) is not None else []
    found = {r.digest for r in rows}
    folders = sorted((r for r in rows if r.kind == "folder"), key=lambda r: r.version, reverse=True)
    for row in folders[:_FOLDER_VERSIONS]:
        found |= _members(tracker.blobs, row.digest)
    return found


def require_possession(request: Request, name: str, digest: str, kind: str) -> None:
    """A 403 unless the caller may reference the stored object ``digest`` (and, for a folder,
    each stored file its manifest lists): they uploaded it or may read something holding it.
    Objects not stored are left to the version code's own "not uploaded" error."""
    possession.require_objects(request, {"digest": (_digest(digest), kind == "folder")}, "digest",
                               lambda _: dataset_objects(request, name))


async def _spool(request: Request, spool: IO[bytes]) -> Digest:
    """The request body into ``spool``, hashed on the way (bounded size)."""
    from conveyor.blobs._digest import ALGORITHM, new_hasher

    hasher = new_hasher()
    await spool_body(request, spool, hasher)
    return Digest(ALGORITHM, hasher.hexdigest())


@router.put("/{digest}", response_model=BlobOut, status_code=201, openapi_extra=_OCTETS,
            summary="Upload one object of the data set (the body's BLAKE3 digest must be {digest})")
async def upload(request: Request, name: str = DatasetName, digest: str = DigestText) -> Response:
    await run_in_threadpool(writable, request, _name(name))
    return await store_body(request, _digest(digest))


async def store_body(request: Request, wanted: Digest) -> Response:
    """Store the request body as one object if it hashes to ``wanted`` (else a 400, nothing
    stored): spooled to a temporary file while hashing, then put into the artifact store."""
    with tempfile.TemporaryFile() as spool:
        actual = await _spool(request, spool)
        if actual != wanted:
            raise ApiV1Error("INVALID", f"the body hashes to {actual}, not {wanted}; nothing was stored",
                             field="body")
        blob = await run_in_threadpool(_deps.tracker(request).blobs.put_stream, spool)
    await run_in_threadpool(possession.remember, request, [blob.digest])
    return json_response(BlobOut(digest=str(blob.digest), size=blob.size), 201)


# -- downloads ----------------------------------------------------------------------------------------
_lock = threading.Lock()
_MEMBERS: OrderedDict[str, frozenset[str]] = OrderedDict()
_CACHED = 32  # manifests whose entry sets are kept (content-addressed: never stale)


def _members(blobs: Any, manifest: str) -> frozenset[str]:
    with _lock:
        found = _MEMBERS.get(manifest)
        if found is not None:
            _MEMBERS.move_to_end(manifest)
            return found
    entries = blobs.read_manifest(Digest.parse(manifest)).entries
    # A file's own object, or the pack that holds it (small files of a folder are packed).
    found = frozenset(str(e.digest) for e in entries) | frozenset(str(e.pack) for e in entries if e.pack is not None)
    with _lock:
        _MEMBERS[manifest] = found
        while len(_MEMBERS) > _CACHED:
            _MEMBERS.popitem(last=False)
    return found


def _belongs(request: Request, name: str, digest: Digest, version: int | None) -> None:
    """A 404 unless ``digest`` belongs to the data set (to ``version`` when given)."""
    from conveyor.store import DatasetRepo

    _deps.authorize(request, "data", name, "read")
    tracker = _deps.tracker(request)
    repo = DatasetRepo()
    with tracker.store.read() as conn:
        rows = [repo.get(conn, name, version)] if version is not None else repo.versions(conn, name)
    text = str(digest)
    if any(r.digest == text for r in rows):
        return
    if version is not None and rows[0].kind == "folder" and text in _members(tracker.blobs, rows[0].digest):
        return
    where = f"data:/{name}" + (f"@{version}" if version is not None else "")
    raise NotFound("object", f"{text} of {where}", hint="download only objects of the version you name")


VersionQuery = Query(None, ge=1, le=2**31 - 1, description="The version the object belongs to.")


def _found(request: Request, name: str, digest: str, version: int | None) -> tuple[Any, Digest, dict[str, str]]:
    _deps.authorize(request, "data", name, "read")  # first: a refused caller learns nothing
    wanted = _digest(digest)
    _belongs(request, _name(name), wanted, version)
    tracker = _deps.tracker(request)
    size = tracker.blobs.size(wanted)
    return tracker, wanted, {"Content-Length": str(size), "X-Conveyor-Digest": str(wanted)}


@router.get("/{digest}", summary="Download one object of a data set version (Range supported)",
            responses={200: {"content": {"application/octet-stream": {}}, "description": "The bytes"},
                       206: {"description": "The requested range (a download resumed)"},
                       416: {"description": "A bad range"}})
def download(request: Request, name: str = DatasetName, digest: str = DigestText,
             version: int | None = VersionQuery) -> Response:
    tracker, wanted, headers = _found(request, name, digest, version)
    size = int(headers["Content-Length"])
    headers["Accept-Ranges"] = "bytes"
    part = _range(request.headers.get("range"), size)
    if part is None:
        return StreamingResponse(_chunks(_open(tracker, wanted, 0), size), media_type="application/octet-stream",
                                 headers=headers)
    first, last = part
    headers.update({"Content-Range": f"bytes {first}-{last}/{size}", "Content-Length": str(last - first + 1)})
    return StreamingResponse(_chunks(_open(tracker, wanted, first), last - first + 1), status_code=206,
                             media_type="application/octet-stream", headers=headers)


@router.head("/{digest}", summary="The size of one object of a data set version (Content-Length)")
def object_size(request: Request, name: str = DatasetName, digest: str = DigestText,
                version: int | None = VersionQuery) -> Response:
    return Response(b"", media_type="application/octet-stream", headers=_found(request, name, digest, version)[2])


__all__ = ["dataset_objects", "require_possession", "router", "writable"]
