"""Remote mode's large-file transfers: multipart (resumable) and presigned uploads, and
downloads that follow a server's redirect to a presigned URL.

``upload_file`` hashes the file once (BLAKE3 for its content address and each part,
SHA-256 for S3's own check of a presigned PUT), announces it (``POST …/uploads``), then
sends what the server asks for: the whole file to a presigned URL, the parts that are
missing (each retried for ``[server] retry_seconds``), or nothing when the server already
has the bytes; ``complete`` makes the server verify and record it. The upload's id is kept
in ``<spool_dir>/uploads/`` until it completes, so calling ``log_artifact`` again after a
lost connection (or a crash) resumes it: the server lists the parts that arrived and only
the others are sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from conveyor.blobs._digest import ALGORITHM, CHUNK_SIZE, new_hasher
from conveyor.errors import ConveyorError, NotFound, StorageError

__all__ = ["download", "read_all", "upload_file"]

_CHUNK = 1024 * 1024


class Hashes:
    """A file's digest, SHA-256 and per-part digests, from one read."""

    def __init__(self, source: Path, part_size: int) -> None:
        whole, sha, part = new_hasher(), hashlib.sha256(), new_hasher(part_size)
        self.parts: list[str] = []
        self.size, in_part = 0, 0
        with open(source, "rb", buffering=0) as stream:
            while chunk := stream.read(min(CHUNK_SIZE, part_size - in_part)):
                whole.update(chunk)
                sha.update(chunk)
                part.update(chunk)
                self.size += len(chunk)
                in_part += len(chunk)
                if in_part == part_size:
                    self.parts.append(f"{ALGORITHM}:{part.hexdigest()}")
                    part, in_part = new_hasher(part_size), 0
        if in_part or not self.parts:
            self.parts.append(f"{ALGORITHM}:{part.hexdigest()}")
        self.digest = f"{ALGORITHM}:{whole.hexdigest()}"
        self.sha256 = sha.hexdigest()


def _slice(source: Path, offset: int, length: int) -> Iterator[bytes]:
    with open(source, "rb") as stream:
        stream.seek(offset)
        while length > 0:
            chunk = stream.read(min(_CHUNK, length))
            if not chunk:
                raise StorageError(f"{source} became shorter while being uploaded; upload it again")
            length -= len(chunk)
            yield chunk


def _state_file(state_dir: Path | None, run_id: str, path: str | None, digest: str) -> Path | None:
    if state_dir is None:
        return None
    key = hashlib.sha256(f"{run_id}\0{path}\0{digest}".encode()).hexdigest()[:32]
    return state_dir / "uploads" / f"{key}.json"


def _resume(http: Any, run_id: str, state: Path | None) -> dict[str, Any] | None:
    """The upload a previous attempt left (its status from the server), if it still exists."""
    if state is None or not state.is_file():
        return None
    try:
        upload_id = json.loads(state.read_text(encoding="utf-8"))["id"]
        found: dict[str, Any] = http.json("GET", f"/runs/{run_id}/uploads/{upload_id}")
        return found
    except (NotFound, ValueError, KeyError, TypeError):
        state.unlink(missing_ok=True)
        return None


def _send_parts(http: Any, run_id: str, upload: dict[str, Any], source: Path, hashes: Hashes) -> None:
    part_size = int(upload["part_size"])
    for number in upload["missing"]:
        offset = (number - 1) * part_size
        length = min(part_size, hashes.size - offset)
        http.request("PUT", f"/runs/{run_id}/uploads/{upload['id']}/parts/{number}",
                     content=lambda o=offset, n=length: _slice(source, o, n),
                     headers={"Content-Type": "application/octet-stream",
                              "X-Conveyor-Part-Digest": hashes.parts[number - 1]})


def _put_presigned(http: Any, upload: dict[str, Any], source: Path, size: int) -> None:
    """PUT the whole file to the presigned URL (no conveyor credentials go there)."""
    deadline = time.monotonic() + http.retry_seconds
    while True:
        try:
            with open(source, "rb") as body:
                answer = httpx.put(upload["url"], content=body, timeout=httpx.Timeout(300.0, connect=10.0),
                                   headers={**upload["headers"], "Content-Length": str(size)})
            if answer.status_code < 300:
                return
            failure: ConveyorError = StorageError(
                f"the artifact store refused the presigned upload: HTTP {answer.status_code}",
                hint="the URL may have expired ([server] presigned_seconds); log the artifact again")
            if answer.status_code < 500:
                raise failure
        except httpx.TransportError as exc:
            failure = StorageError(f"the presigned upload failed: {type(exc).__name__}")
        if time.monotonic() > deadline:
            raise failure
        time.sleep(1.0)


def upload_file(http: Any, run_id: str, path: str | None, source: Path, media: str, *, part_size: int,
                state_dir: Path | None = None) -> dict[str, Any]:
    """Upload ``source`` as artifact ``path`` of the run; the recorded artifact as JSON. With
    ``path`` None it is one file of a folder: the answer is its digest and size."""
    hashes = Hashes(source, part_size)
    state = _state_file(state_dir, run_id, path, hashes.digest)
    upload = _resume(http, run_id, state)
    if upload is None:
        upload = http.json("POST", f"/runs/{run_id}/uploads", json={
            "path": path, "digest": hashes.digest, "size": hashes.size, "part_size": part_size,
            "media_type": media, "presigned": True, "sha256": hashes.sha256})
        if state is not None:
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text(json.dumps({"id": upload["id"], "path": path, "source": os.fspath(source)}),
                             encoding="utf-8")
    if int(upload["part_size"]) != part_size and upload["mode"] == "parts":
        hashes = Hashes(source, int(upload["part_size"]))  # a resumed upload keeps its part size
    if upload["mode"] == "presigned":
        _put_presigned(http, upload, source, hashes.size)
    elif upload["mode"] == "parts":
        _send_parts(http, run_id, upload, source, hashes)
    try:
        done: dict[str, Any] = http.json("POST", f"/runs/{run_id}/uploads/{upload['id']}/complete")
    except ConveyorError as exc:
        if "missing part" not in str(exc):
            if state is not None and "hash to" in str(exc):
                state.unlink(missing_ok=True)  # the server dropped it: the next attempt starts afresh
            raise
        # parts went missing meanwhile (cleaned): send them once more
        _send_parts(http, run_id, http.json("GET", f"/runs/{run_id}/uploads/{upload['id']}"), source, hashes)
        done = http.json("POST", f"/runs/{run_id}/uploads/{upload['id']}/complete")
    if state is not None:
        state.unlink(missing_ok=True)
    return done


def _location(response: httpx.Response) -> str | None:
    if response.status_code in (302, 303, 307) and response.headers.get("location"):
        return response.headers["location"]
    return None


def _refused(response: httpx.Response) -> StorageError:
    return StorageError(f"the artifact store refused the presigned download: HTTP {response.status_code}",
                        hint="the URL may have expired ([server] presigned_seconds); download again")


@contextlib.contextmanager
def download(http: Any, path: str) -> Iterator[httpx.Response]:
    """The streamed answer to ``GET path``; a redirect of the server to a presigned URL is
    followed without conveyor's credentials (the bytes come straight from the bucket)."""
    with http.client.stream("GET", path) as response:
        location = _location(response)
        if location is None:
            yield response
            return
        response.read()
    with httpx.stream("GET", location, timeout=httpx.Timeout(300.0, connect=10.0)) as direct:
        if direct.status_code >= 400:
            direct.read()
            raise _refused(direct)
        yield direct


def read_all(response: httpx.Response) -> bytes:
    """The body of a server's answer, or of the presigned URL it redirected to."""
    location = _location(response)
    if location is None:
        return response.content
    direct = httpx.get(location, timeout=httpx.Timeout(300.0, connect=10.0))
    if direct.status_code >= 400:
        raise _refused(direct)
    return direct.content
