"""Where multipart and presigned uploads wait until they are complete and verified.

An upload is announced with the whole file's digest and size; its bytes arrive in numbered
parts (or, on S3 with presigned URLs, as one PUT straight to the bucket). Nothing is visible
under its content address until ``assemble`` has hashed the assembled bytes and found the
announced digest; then the object is stored atomically and the staging area is emptied.

Two media, one contract (``Staging``):

- a local artifact store keeps each upload in its own ``.tmp`` folder files —
  ``upload-<id>.json`` (the record) and ``upload-<id>.part-<n>`` (each verified part, renamed
  into place) — and assembles them into one temp file, hashed on the way, renamed to the
  object's name. ``conveyor gc`` already removes old ``.tmp`` files; each part refreshes
  the mtimes of all the upload's files so an active upload is never taken for abandoned;
- S3 uses S3's own multipart upload on a staging key (see ``_staging_s3.py``).

Every start of a new upload also removes the uploads whose expiry passed
(``[server] upload_expiry_hours``), so abandoned parts do not wait for a ``gc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from conveyor.blobs import Blob, Digest
from conveyor.blobs._backend import TMP_DIR, object_relpath
from conveyor.blobs._digest import ALGORITHM, new_hasher, read_chunks
from conveyor.blobs._local import fsync_dir, write_all
from conveyor.errors import Conflict, InvalidInput, NotFound

__all__ = ["MAX_PART", "Staging", "Upload", "new_upload_id", "require_complete", "staging_for"]

#: Largest part accepted; the client's ``[server] multipart_part_size`` is at most this.
MAX_PART: Final = 64 * 1024 * 1024
#: Smallest part (but the last) on a local store; S3 requires 5 MiB.
MIN_PART_LOCAL: Final = 1024 * 1024
MIN_PART_S3: Final = 5 * 1024 * 1024
MAX_PARTS: Final = 10_000
UPLOAD_ID: Final = re.compile(r"^[0-9a-f]{32}$")


def new_upload_id() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class Upload:
    """One upload in progress: what it will become and how its bytes arrive."""

    id: str
    run_id: str
    path: str
    digest: str
    size: int
    part_size: int
    media_type: str
    mode: str  # "parts", "presigned" or "exists" (the object is already stored)
    user: str | None
    created: float
    expires: float
    s3_upload_id: str = ""

    @property
    def part_count(self) -> int:
        return max(1, -(-self.size // self.part_size))

    def part_length(self, number: int) -> int:
        """How many bytes part ``number`` (1-based) must have."""
        if not 1 <= number <= self.part_count:
            raise InvalidInput(f"part {number} is outside 1..{self.part_count} of upload {self.id}",
                               field="number", value=number)
        if number < self.part_count:
            return self.part_size
        return self.size - self.part_size * (self.part_count - 1)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes, upload_id: str) -> Upload:
        """The record written by ``to_json``; anything else is an upload that does not exist."""
        try:
            upload = cls(**json.loads(data))
        except (ValueError, TypeError):
            raise NotFound("upload", upload_id, hint="its record is unreadable; start the upload again") from None
        if upload.id != upload_id:
            raise NotFound("upload", upload_id)
        return upload


class Staging(Protocol):
    min_part: int
    spool_dir: Path | None  # where a part is received before ``put_part`` takes it (None: system temp)

    def create(self, upload: Upload) -> Upload: ...
    def load(self, upload_id: str) -> Upload: ...
    def put_part(self, upload: Upload, number: int, received: Path) -> None: ...
    def parts(self, upload: Upload) -> dict[int, int]: ...
    def assemble(self, upload: Upload) -> Blob: ...
    def discard(self, upload: Upload) -> None: ...
    def sweep(self) -> int: ...


def staging_for(blobs: Any) -> Staging:
    """The staging area of an open ``BlobStore`` (local folder or S3)."""
    from conveyor.blobs._local import LocalBackend

    backend = blobs._backend
    if isinstance(backend, LocalBackend):
        return LocalStaging(backend.root)
    from conveyor.server._staging_s3 import S3Staging

    return S3Staging(blobs)


def mismatch(upload: Upload, actual: str, size: int) -> InvalidInput:
    return InvalidInput(
        f"upload {upload.id} of {upload.path!r}: the assembled {size} bytes hash to {actual}, not the announced "
        f"{upload.digest} ({upload.size} bytes); nothing was stored",
        field="digest", value=upload.digest, hint="start the upload again from the original file")


class LocalStaging:
    """Uploads of a local artifact store, in its ``.tmp`` folder (see the module docstring)."""

    min_part = MIN_PART_LOCAL

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / TMP_DIR
        self.spool_dir: Path | None = self.tmp

    def _meta(self, upload_id: str) -> Path:
        return self.tmp / f"upload-{upload_id}.json"

    def _part(self, upload_id: str, number: int) -> Path:
        return self.tmp / f"upload-{upload_id}.part-{number:05d}"

    def _files(self, upload_id: str) -> list[Path]:
        return sorted(self.tmp.glob(f"upload-{upload_id}.*"))

    def create(self, upload: Upload) -> Upload:
        self.tmp.mkdir(parents=True, exist_ok=True)
        staged = self.tmp / f"upload-{upload.id}.json.new"
        staged.write_bytes(upload.to_json())
        os.replace(staged, self._meta(upload.id))
        return upload

    def load(self, upload_id: str) -> Upload:
        try:
            return Upload.from_json(self._meta(upload_id).read_bytes(), upload_id)
        except FileNotFoundError:
            raise NotFound("upload", upload_id) from None

    def put_part(self, upload: Upload, number: int, received: Path) -> None:
        if not self._meta(upload.id).exists():  # aborted or expired meanwhile
            raise NotFound("upload", upload.id)
        os.replace(received, self._part(upload.id, number))
        now = time.time()
        for file in self._files(upload.id):  # an active upload is never "old" to gc
            with contextlib.suppress(FileNotFoundError):
                os.utime(file, (now, now))

    def parts(self, upload: Upload) -> dict[int, int]:
        found = {}
        for file in self.tmp.glob(f"upload-{upload.id}.part-*"):
            with contextlib.suppress(FileNotFoundError, ValueError):
                found[int(file.name.rsplit("-", 1)[1])] = file.stat().st_size
        return found

    def assemble(self, upload: Upload) -> Blob:
        """Concatenate the parts into one temp file while hashing; rename it to its digest."""
        digest = Digest.parse(upload.digest)
        final = self.root / object_relpath(digest)
        tmp = self.tmp / f"upload-{upload.id}.assembling-{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            hasher, size = new_hasher(upload.size), 0
            try:
                for number in range(1, upload.part_count + 1):
                    with open(self._part(upload.id, number), "rb", buffering=0) as part:
                        for chunk in read_chunks(part):
                            hasher.update(chunk)
                            write_all(fd, chunk)
                            size += len(chunk)
                actual = f"{ALGORITHM}:{hasher.hexdigest()}"
                if actual != upload.digest or size != upload.size:
                    self.discard(upload)
                    raise mismatch(upload, actual, size)
                os.fsync(fd)
            finally:
                os.close(fd)
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
            fsync_dir(final.parent)
        finally:
            tmp.unlink(missing_ok=True)
        self.discard(upload)
        return Blob(digest, size)

    def discard(self, upload: Upload) -> None:
        for file in self._files(upload.id):
            if ".assembling-" not in file.name:  # a concurrent completion removes its own
                file.unlink(missing_ok=True)

    def sweep(self) -> int:
        removed = 0
        now = time.time()
        for meta in self.tmp.glob("upload-*.json"):
            with contextlib.suppress(FileNotFoundError, NotFound):
                upload = Upload.from_json(meta.read_bytes(), meta.name[len("upload-"):-len(".json")])
                if upload.expires < now:
                    self.discard(upload)
                    removed += 1
        return removed


def require_complete(upload: Upload, parts: dict[int, int]) -> None:
    missing = [n for n in range(1, upload.part_count + 1) if parts.get(n) != upload.part_length(n)]
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (" …" if len(missing) > 20 else "")
        raise Conflict(f"upload {upload.id} is missing part(s) {shown} of {upload.part_count}; "
                       "send them (GET the upload lists what arrived), then complete again")
