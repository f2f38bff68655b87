"""``/api/v1/runs/{run_id}/artifacts``: streamed upload and download (with HTTP ranges), listing,
and folders as manifests.

An upload is streamed to an unnamed temporary file (constant memory, bounded size), then
stored in the content-addressed artifact store (which itself writes a temporary object and
renames it), and only then recorded as the run's artifact: an upload cut off at any point
leaves no artifact behind. A folder is uploaded file by file as blobs (``PUT …/blobs``) and
then recorded as one manifest (``POST …/folders/{path}``). Every path is checked by the
same rule as MLflow's compatible API (:mod:`conveyor.server._paths`) before anything is
read or written.
"""

from __future__ import annotations

import mimetypes
import re
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from conveyor.blobs import MANIFEST_MEDIA_TYPE, Digest, Manifest, ManifestEntry
from conveyor.entities import Artifact
from conveyor.errors import Conflict, InvalidInput, NotFound
from conveyor.server._errors import ApiError
from conveyor.server import _possession as possession
from conveyor.server._paths import safe_path
from conveyor.server.api import _deps
from conveyor.server.api._errors import ApiV1Error
from conveyor.server.api._models import no_nul, RUN_ID, ArtifactFile, ArtifactOut, BlobOut, FolderCreate, json_response
from conveyor.server.api.runs import authorize_run

router = APIRouter(prefix="/runs/{run_id}", tags=["artifacts"])

MAX_UPLOAD_BYTES = 5 * 1024**3
CHUNK = 1024 * 1024
RunId = Path(pattern=RUN_ID, description="A run id (32 hexadecimal characters).")
_OCTETS = {"requestBody": {"required": True, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}}}}


def checked(path: str, *, allow_empty: bool = False) -> str:
    """``path`` when it is a safe relative artifact path; else a 400 naming why."""
    try:
        return safe_path(path, allow_empty=allow_empty)
    except ApiError as error:
        raise ApiV1Error("INVALID", error.message, field="path") from None


async def _spool(request: Request, spool: IO[bytes], hasher: Any = None) -> int:
    """The request body into ``spool`` (rewound), at most ``MAX_UPLOAD_BYTES``, fed to
    ``hasher`` on the way when given; returns its size."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise ApiV1Error("TOO_LARGE", f"an upload is at most {MAX_UPLOAD_BYTES:,} bytes", field="body")
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise ApiV1Error("TOO_LARGE", f"an upload is at most {MAX_UPLOAD_BYTES:,} bytes", field="body")
            if hasher is not None:
                hasher.update(chunk)
            spool.write(chunk)
    except ClientDisconnect:
        raise ApiV1Error("INVALID", "the upload was cut off before its end; nothing was stored",
                         field="body") from None
    spool.seek(0)
    return size


def _writable(request: Request, run_id: str) -> None:
    authorize_run(request, run_id, "edit")
    store = _deps.tracker(request).store
    if store.query(lambda conn: store.runs.require(conn, run_id), what=f"reading run {run_id}").deleted_at is not None:
        raise Conflict(f"run {run_id} is deleted; restore it before logging to it")


def _store_file(request: Request, run_id: str, path: str, spool: IO[bytes], media: str | None) -> Artifact:
    tracker = _deps.tracker(request)
    blob = tracker.blobs.put_stream(spool)  # type: ignore[arg-type]
    kind = media or mimetypes.guess_type(path)[0] or "application/octet-stream"
    return tracker._record(Artifact(run_id, path, str(blob.digest), blob.size, kind))


@router.put("/artifacts/{path:path}", response_model=ArtifactOut, openapi_extra=_OCTETS,
            summary="Upload one file as an artifact of the run (the body is the file's bytes)")
async def upload(request: Request, path: str, run_id: str = RunId) -> Response:
    rel = checked(path)
    await run_in_threadpool(_writable, request, run_id)
    media = request.headers.get("content-type")
    if media in (None, "", "application/octet-stream"):
        media = None
    with tempfile.TemporaryFile() as spool:
        await _spool(request, spool)
        artifact = await run_in_threadpool(_store_file, request, run_id, rel, spool, media)
    return json_response(ArtifactOut.of(artifact), 201)


def _store_blob(request: Request, spool: IO[bytes]) -> BlobOut:
    blob = _deps.tracker(request).blobs.put_stream(spool)  # type: ignore[arg-type]
    possession.remember(request, [blob.digest])  # the caller sent these bytes: the folder may name them
    return BlobOut(digest=str(blob.digest), size=blob.size)


@router.put("/blobs", response_model=BlobOut, openapi_extra=_OCTETS,
            summary="Store one file of a folder about to be recorded with POST …/folders/{path}")
async def upload_blob(request: Request, run_id: str = RunId) -> Response:
    await run_in_threadpool(_writable, request, run_id)
    with tempfile.TemporaryFile() as spool:
        await _spool(request, spool)
        out = await run_in_threadpool(_store_blob, request, spool)
    return json_response(out, 201)


@router.post("/folders/{path:path}", response_model=ArtifactOut, status_code=201, dependencies=[Depends(no_nul)],
             summary="Record a folder artifact: a manifest of files uploaded with PUT …/blobs")
def create_folder(request: Request, path: str, body: FolderCreate, run_id: str = RunId) -> Response:
    rel = checked(path)
    _writable(request, run_id)
    tracker = _deps.tracker(request)
    entries = []
    for entry in body.entries:
        checked(entry.path)
        entries.append(ManifestEntry(entry.path, Digest.parse(entry.digest), entry.size))
    stored = tracker.blobs.exists_many([e.digest for e in entries])
    for entry in entries:
        if entry.digest not in stored:
            raise InvalidInput(f"folder file {entry.path!r}: blob {entry.digest} was not uploaded",
                               field="entries", value=entry.path, hint="PUT its bytes to …/blobs first")
    # Stored is not enough: the caller must have sent the bytes or may read something holding them.
    possession.require(request, {f"folder file {e.path!r}": e.digest for e in entries}, "entries")
    manifest = Manifest.of(entries)
    for entry in entries:  # a size the client got wrong would break downloads and listings
        if tracker.blobs.size(entry.digest) != entry.size:
            raise InvalidInput(f"folder file {entry.path!r}: size {entry.size} is not the stored blob's",
                               field="entries", value=entry.path)
    blob = tracker.blobs.put_bytes(manifest.to_bytes())
    artifact = tracker._record(Artifact(run_id, rel, str(blob.digest), manifest.total_size, MANIFEST_MEDIA_TYPE,
                                        True))
    return json_response(ArtifactOut.of(artifact), 201)


@router.get("/artifacts", response_model=list[ArtifactOut], summary="The run's artifacts (folders as one entry)")
def list_(request: Request, run_id: str = RunId,
          prefix: str = Query("", max_length=4096, description="Only paths starting with this.")) -> Response:
    authorize_run(request, run_id, "read")
    checked(prefix, allow_empty=True)
    found = _deps.tracker(request).list_artifacts(run_id, prefix)
    return json_response([ArtifactOut.of(a) for a in found])


@router.get("/artifact-files", response_model=list[ArtifactFile],
            summary="Every file of the run's artifacts, folders expanded")
def files(request: Request, run_id: str = RunId) -> Response:
    authorize_run(request, run_id, "read")
    return json_response([ArtifactFile(path=p, size=s, digest=d) for p, s, d in artifact_files(
        _deps.tracker(request), run_id)])


def artifact_files(tracker: Any, run_id: str) -> list[tuple[str, int, str]]:
    rows = []
    for a in tracker.list_artifacts(run_id):
        if a.is_dir:
            for entry in tracker.blobs.read_manifest(Digest.parse(a.digest)).entries:
                rows.append((f"{a.path}/{entry.path}", entry.size, str(entry.digest)))
        else:
            rows.append((a.path, a.size, a.digest))
    return rows


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single ``Range``; None for the whole file (no or several ranges)."""
    if not header or "," in header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise ApiV1Error("RANGE_NOT_SATISFIABLE", f"Range {header!r} is not bytes=FIRST-LAST", field="Range")
    first, last = match.group(1), match.group(2)
    if first == "":  # the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            raise ApiV1Error("RANGE_NOT_SATISFIABLE", f"Range {header!r} selects nothing of {size} bytes",
                             field="Range")
        return max(0, size - count), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise ApiV1Error("RANGE_NOT_SATISFIABLE", f"Range {header!r} is outside the {size} bytes", field="Range")
    return start, end


def _open(tracker: Any, handle_digest: Digest, start: int) -> IO[bytes]:
    handle = tracker.blobs.open_read(handle_digest)
    if start:
        try:
            handle.seek(start)
        except (OSError, AttributeError, ValueError):
            left = start
            while left:
                left -= len(handle.read(min(CHUNK, left)) or b"") or left
    return handle  # type: ignore[no-any-return]


def _chunks(handle: IO[bytes], count: int) -> Iterator[bytes]:
    with handle:
        while count > 0:
            chunk = handle.read(min(CHUNK, count))
            if not chunk:
                return
            count -= len(chunk)
            yield chunk


@router.get("/artifacts/{path:path}", summary="Download a file (Range supported) or a folder's manifest",
            responses={200: {"content": {"application/octet-stream": {}, MANIFEST_MEDIA_TYPE: {}},
                             "description": "The bytes; a folder answers with its manifest"},
                       206: {"description": "The requested range"}, 416: {"description": "A bad range"}})
def download(request: Request, path: str, run_id: str = RunId) -> Response:
    rel = checked(path)
    authorize_run(request, run_id, "read")
    tracker = _deps.tracker(request)
    artifact = tracker.get_artifact(run_id, rel)
    digest = Digest.parse(artifact.digest)
    headers = {"X-Conveyor-Digest": artifact.digest, "Accept-Ranges": "bytes",
               "X-Conveyor-Is-Dir": "true" if artifact.is_dir else "false"}
    if artifact.is_dir:
        return Response(tracker.blobs.read_bytes(digest), media_type=MANIFEST_MEDIA_TYPE, headers=headers)
    from conveyor.server.api.uploads import presigned_download

    if (direct := presigned_download(request, artifact)) is not None:
        return direct  # S3 with [server] presigned_urls: the bytes go from the bucket to the client
    size = tracker.blobs.size(digest)
    wanted = _range(request.headers.get("range"), size)
    if wanted is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(_chunks(_open(tracker, digest, 0), size), media_type=artifact.media_type,
                                 headers=headers)
    first, last = wanted
    headers.update({"Content-Range": f"bytes {first}-{last}/{size}", "Content-Length": str(last - first + 1)})
    return StreamingResponse(_chunks(_open(tracker, digest, first), last - first + 1), status_code=206,
                             media_type=artifact.media_type, headers=headers)


__all__ = ["router", "NotFound"]
