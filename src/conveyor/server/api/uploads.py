"""``/api/v1/runs/{run_id}/uploads``: multipart (resumable) and presigned artifact uploads,
and presigned downloads.

A client announces the file (artifact path, BLAKE3 digest, size), then either sends numbered
parts (``PUT …/parts/{n}``, each checked against its own digest header, at most 64 MiB) or —
when the server's artifact store is S3 and ``[server] presigned_urls`` is on — PUTs the
whole file to the short-lived presigned URL in the answer. ``POST …/complete`` hashes the
assembled bytes, stores them under their content address only if they match, and records
the artifact; ``GET`` lists the parts that arrived (a client that lost its connection sends
only the others), ``DELETE`` aborts. Authorization is the streamed routes': edit on the
run's experiment (``artifacts._writable``). Staging is ``conveyor.server._staging``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import tempfile
import time
from pathlib import Path as FsPath
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import RedirectResponse, Response

from conveyor.blobs import Digest
from conveyor.blobs._digest import ALGORITHM, new_hasher
from conveyor.entities import Artifact
from conveyor.errors import Conflict, NotFound
from conveyor.server import _possession as possession
from conveyor.server._staging import MAX_PART, MAX_PARTS, Staging, Upload, new_upload_id, require_complete, staging_for
from conveyor.server.api import _deps
from conveyor.server.api._errors import ApiV1Error
from conveyor.server.api._models import RUN_ID, ArtifactOut, BlobOut, _Body, _Out, json_response, no_nul
from conveyor.server.api.artifacts import checked, _writable

router = APIRouter(prefix="/runs/{run_id}", tags=["uploads"])

RunId = Path(pattern=RUN_ID, description="A run id (32 hexadecimal characters).")
UploadId = Path(pattern=r"^[0-9a-f]{32}$", description="The upload's id, from POST …/uploads.")
#: One PUT to S3 (a presigned upload) is at most 5 GiB; bigger files go in parts.
PRESIGNED_MAX = 5 * 1024**3
_OCTETS = {"requestBody": {"required": True, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}}}}
_DIGEST = rf"^{ALGORITHM}:[0-9a-f]{{64}}$"


class UploadCreate(_Body):
    path: str | None = Field(None, min_length=1, max_length=4096,
                             description="The artifact path the file becomes; null for one file of a folder "
                                         "(complete then answers its digest, for POST …/folders/{path}).")
    digest: str = Field(pattern=_DIGEST, description="The whole file's digest, blake3:<64 hex>.")
    size: int = Field(ge=0, description="The whole file's size in bytes.")
    part_size: int = Field(32 * 1024 * 1024, ge=1, le=MAX_PART, description="Bytes per part (all but the last).")
    media_type: str | None = Field(None, max_length=255)
    presigned: bool = Field(False, description="Ask for a presigned PUT URL (S3 with [server] presigned_urls).")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$",
                               description="The file's SHA-256 (hex): S3 checks it on the presigned PUT.")


class PartOut(_Out):
    number: int
    size: int


class UploadOut(_Out):
    id: str
    run_id: str
    path: str | None
    digest: str
    size: int
    part_size: int
    part_count: int
    mode: str = Field(description="parts: PUT each part; presigned: PUT the file to url with headers; "
                                  "exists: the bytes are stored already, just complete.")
    expires_at: float = Field(description="When an unfinished upload is removed (POSIX seconds).")
    parts: list[PartOut] = Field(default_factory=list, description="The parts that arrived.")
    missing: list[int] = Field(default_factory=list, description="The part numbers still to send.")
    url: str | None = Field(None, description="mode presigned: where to PUT the file (short-lived).")
    headers: dict[str, str] = Field(default_factory=dict, description="mode presigned: headers the PUT must carry.")


def _settings(request: Request) -> Any:
    return request.app.state.server


def _staging(request: Request) -> Staging:
    state = request.app.state
    staging = getattr(state, "staging", None)
    if staging is None:
        staging = state.staging = staging_for(_deps.tracker(request).blobs)
    return staging  # type: ignore[no-any-return]


def _out(upload: Upload, parts: dict[int, int], *, url: str | None = None,
         headers: dict[str, str] | None = None) -> UploadOut:
    return UploadOut(
        id=upload.id, run_id=upload.run_id, path=upload.path or None, digest=upload.digest, size=upload.size,
        part_size=upload.part_size, part_count=upload.part_count, mode=upload.mode, expires_at=upload.expires,
        parts=[PartOut(number=n, size=s) for n, s in sorted(parts.items())],
        missing=[] if upload.mode != "parts" else
        [n for n in range(1, upload.part_count + 1) if parts.get(n) != upload.part_length(n)],
        url=url, headers=headers or {})


def _mine(request: Request, run_id: str, upload_id: str) -> Upload:
    """The upload, after the caller was authorized on its run; expired ones are removed."""
    _writable(request, run_id)
    staging = _staging(request)
    upload = staging.load(upload_id)
    if upload.run_id != run_id.lower():
        raise NotFound("upload", upload_id)
    if upload.expires < time.time():
        staging.discard(upload)
        raise NotFound("upload", upload_id, hint="it expired ([server] upload_expiry_hours); start again")
    return upload


def _create(request: Request, run_id: str, body: UploadCreate) -> UploadOut:
    from conveyor.server._staging_s3 import S3Staging

    rel = checked(body.path) if body.path is not None else ""
    _writable(request, run_id)
    settings, staging, blobs = _settings(request), _staging(request), _deps.tracker(request).blobs
    with contextlib.suppress(Exception):  # housekeeping must not fail an upload
        staging.sweep()
    if body.part_size < staging.min_part and body.size > body.part_size:
        raise ApiV1Error("INVALID", f"part_size {body.part_size} is below this store's minimum of "
                         f"{staging.min_part} bytes", field="part_size")
    if -(-body.size // body.part_size) > MAX_PARTS:
        raise ApiV1Error("INVALID", f"{body.size} bytes in parts of {body.part_size} make more than "
                         f"{MAX_PARTS} parts; use bigger parts (at most {MAX_PART})", field="part_size")
    digest = Digest.parse(body.digest)
    presigned = (body.presigned and settings.presigned_urls and isinstance(staging, S3Staging)
                 and body.sha256 is not None and body.size <= PRESIGNED_MAX)
    mode = "presigned" if presigned else "parts"
    if blobs.exists(digest) and blobs.size(digest) == body.size and digest in possession.held(request, [digest]):
        mode = "exists"  # stored, and the caller may reference it (else they send the bytes: no oracle)
    now = time.time()
    upload = Upload(new_upload_id(), run_id.lower(), rel, str(digest), body.size, body.part_size,
                    body.media_type or "", mode, _deps.user_name(request), now,
                    now + settings.upload_expiry_hours * 3600)
    upload = staging.create(upload)
    url, headers = None, None
    if mode == "presigned":
        assert isinstance(staging, S3Staging) and body.sha256 is not None
        checksum = base64.b64encode(binascii.unhexlify(body.sha256)).decode()
        url, headers = staging.presign_put(upload, checksum, settings.presigned_seconds)
    return _out(upload, {}, url=url, headers=headers)


@router.post("/uploads", response_model=UploadOut, status_code=201, dependencies=[Depends(no_nul)],
             summary="Start a multipart (resumable) or presigned upload of one file")
def create(request: Request, body: UploadCreate, run_id: str = RunId) -> Response:
    return json_response(_create(request, run_id, body), 201)


@router.get("/uploads/{upload_id}", response_model=UploadOut,
            summary="An upload in progress: the parts that arrived and those still missing")
def progress(request: Request, upload_id: str = UploadId, run_id: str = RunId) -> Response:
    upload = _mine(request, run_id, upload_id)
    return json_response(_out(upload, _staging(request).parts(upload)))


async def _receive(request: Request, target: FsPath, limit: int) -> tuple[str, int]:
    """Stream the body into ``target`` while hashing; at most ``limit`` + 1 bytes are read."""
    hasher, size = new_hasher(limit), 0
    try:
        with open(target, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    break
                hasher.update(chunk)
                out.write(chunk)
    except ClientDisconnect:
        raise ApiV1Error("INVALID", "the part was cut off before its end; send it again", field="body") from None
    return f"{ALGORITHM}:{hasher.hexdigest()}", size


@router.put("/uploads/{upload_id}/parts/{number}", response_model=PartOut, openapi_extra=_OCTETS,
            summary="Send one part (header X-Conveyor-Part-Digest: the part's blake3 digest)")
async def put_part(request: Request, number: int = Path(ge=1, le=MAX_PARTS), upload_id: str = UploadId,
                   run_id: str = RunId) -> Response:
    upload = await run_in_threadpool(_mine, request, run_id, upload_id)
    if upload.mode != "parts":
        raise Conflict(f"upload {upload_id} takes no parts (mode {upload.mode})")
    expected = upload.part_length(number)
    claimed = request.headers.get("x-conveyor-part-digest", "")
    if not claimed:
        raise ApiV1Error("INVALID", "a part needs the header X-Conveyor-Part-Digest: blake3:<hex> of its bytes",
                         field="X-Conveyor-Part-Digest")
    claimed = str(Digest.parse(claimed))
    staging = _staging(request)
    fd, name = tempfile.mkstemp(dir=staging.spool_dir, prefix=f"upload-{upload.id}.recv-")
    os.close(fd)
    received = FsPath(name)
    try:
        actual, size = await _receive(request, received, expected)
        if size != expected:
            raise ApiV1Error("INVALID", f"part {number} of upload {upload_id} must be {expected} bytes, "
                             f"{'more' if size > expected else size} arrived", field="body")
        if actual != claimed:
            raise ApiV1Error("INVALID", f"part {number} of upload {upload_id}: its bytes hash to {actual}, not "
                             f"{claimed} (X-Conveyor-Part-Digest); it was not stored, send it again", field="body")
        await run_in_threadpool(staging.put_part, upload, number, received)
    finally:
        received.unlink(missing_ok=True)
    return json_response(PartOut(number=number, size=size))


def _complete(request: Request, run_id: str, upload_id: str) -> ArtifactOut | BlobOut:
    upload = _mine(request, run_id, upload_id)
    staging, tracker = _staging(request), _deps.tracker(request)
    digest = Digest.parse(upload.digest)
    if upload.mode == "exists":
        if not tracker.blobs.exists(digest) or tracker.blobs.size(digest) != upload.size:
            staging.discard(upload)
            raise Conflict(f"the object {upload.digest} was removed meanwhile; start the upload again")
        staging.discard(upload)
    else:
        if upload.mode == "parts":
            require_complete(upload, staging.parts(upload))
        staging.assemble(upload)
        if not upload.path:  # a folder's file: POST …/folders/{path} may name it now
            possession.remember(request, [digest])
    if not upload.path:  # one file of a folder: recorded later by POST …/folders/{path}
        return BlobOut(digest=upload.digest, size=upload.size)
    import mimetypes

    media = upload.media_type or mimetypes.guess_type(upload.path)[0] or "application/octet-stream"
    artifact = tracker._record(Artifact(upload.run_id, upload.path, upload.digest, upload.size, media))
    return ArtifactOut.of(artifact)


@router.post("/uploads/{upload_id}/complete", response_model=ArtifactOut | BlobOut, status_code=201,
             summary="Assemble and verify the upload, store it and record the artifact (a folder's file: "
                     "answer its digest)")
def complete(request: Request, upload_id: str = UploadId, run_id: str = RunId) -> Response:
    return json_response(_complete(request, run_id, upload_id), 201)


@router.delete("/uploads/{upload_id}", status_code=204, summary="Abort an upload and remove its parts")
def abort(request: Request, upload_id: str = UploadId, run_id: str = RunId) -> Response:
    upload = _mine(request, run_id, upload_id)
    _staging(request).discard(upload)
    return Response(status_code=204)


def presigned_download(request: Request, artifact: Artifact) -> Response | None:
    """A redirect to a short-lived presigned GET URL when the server offers them (S3 and
    ``[server] presigned_urls``), else None: the caller streams the bytes itself."""
    from conveyor.server._staging_s3 import S3Staging

    settings = getattr(request.app.state, "server", None)
    if settings is None or not settings.presigned_urls or artifact.is_dir:
        return None
    staging = _staging(request)
    if not isinstance(staging, S3Staging):
        return None
    url = staging.presign_get(Digest.parse(artifact.digest), settings.presigned_seconds, artifact.media_type)
    return RedirectResponse(url, status_code=307, headers={
        "X-Conveyor-Digest": artifact.digest, "Cache-Control": "no-store"})


__all__ = ["presigned_download", "router"]
