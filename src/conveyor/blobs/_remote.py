"""fsspec backend for S3 and S3-compatible object storage (through s3fs).

Object stores have no rename, so atomicity comes from the upload itself: the key is the
digest, computed *before* the upload, and the object only appears when the (multipart)
upload is committed. The bytes are hashed again while uploading and the upload is
discarded unless they still match, so a source file changed mid-upload can never land
under a wrong name.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

import fsspec

from conveyor.errors import StorageError

from ._backend import digest_from_parts, object_relpath, storage_errors
from ._digest import ALGORITHM, CHUNK_SIZE, Digest, hash_stream, new_hasher, read_chunks

__all__ = ["FsspecBackend"]

# S3 allows 10 000 parts of at least 5 MiB. 8 MiB parts keep the client's memory flat
# (s3fs and botocore hold a few copies of the part in flight: ~40 MiB peak measured) and
# reach 70 GB before the part size grows with the input.
_PART_SIZE: Final = 8 * 1024 * 1024
_MAX_PARTS: Final = 9_000


class FsspecBackend:
    """Objects under ``<root>`` of an fsspec filesystem (``bucket/prefix`` on S3)."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, url: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url

    def _key(self, digest: Digest) -> str:
        return f"{self.root}/{object_relpath(digest)}"

    def init(self) -> None:
        # Object stores have no folders to create; check the bucket is reachable instead,
        # so a bad URL or credentials fail at `init` rather than at the first write.
        bucket = self.root.split("/", 1)[0]
        with storage_errors(f"open store {self.url}"):
            if not self.fs.exists(bucket):
                raise StorageError(
                    f"bucket {bucket!r} of {self.url} does not exist",
                    hint="create it first; conveyor does not create buckets",
                )

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Nothing to defer: an object store's PUT is durable when it returns."""
        return contextlib.nullcontext()

    def put_file(self, path: Path) -> tuple[Digest, int]:
        with open(path, "rb", buffering=0) as stream:
            blob = hash_stream(stream)
            if self.exists(blob.digest):
                return blob.digest, blob.size
            stream.seek(0)
            self._upload(stream, blob.digest, blob.size, source=str(path))
        return blob.digest, blob.size

    def put_stream(self, stream: BinaryIO) -> tuple[Digest, int]:
        # The key needs the digest before the upload starts: spool locally while hashing.
        with tempfile.TemporaryFile() as spool:
            hasher, size = new_hasher(), 0
            for chunk in read_chunks(stream):
                hasher.update(chunk)
                spool.write(chunk)
                size += len(chunk)
            digest = Digest(ALGORITHM, hasher.hexdigest())
            if not self.exists(digest):
                spool.seek(0)
                self._upload(spool, digest, size, source="stream")
        return digest, size

    def _upload(self, stream: BinaryIO, digest: Digest, size: int, *, source: str) -> None:
        part = max(_PART_SIZE, math.ceil(size / _MAX_PARTS))
        with storage_errors(f"upload to {self.url}"):
            # autocommit=False: parts are uploaded as we go, but the object only becomes
            # visible at commit(); discard() aborts the multipart upload.
            out: Any = self.fs.open(self._key(digest), "wb", block_size=part, autocommit=False)
            committed = False
            try:
                hasher = new_hasher(size)
                for chunk in read_chunks(stream):
                    hasher.update(chunk)
                    out.write(chunk)
                out.close()
                if hasher.hexdigest() != digest.hex:
                    raise StorageError(
                        f"{source} changed while being stored (expected {digest}); nothing was written"
                    )
                out.commit()
                committed = True
            finally:
                if not committed:
                    out.discard()

    def open_read(self, digest: Digest) -> BinaryIO:
        with storage_errors("open", digest):
            stream: BinaryIO = self.fs.open(self._key(digest), "rb", block_size=CHUNK_SIZE)
            return stream

    def exists(self, digest: Digest) -> bool:
        with storage_errors("check", digest):
            return bool(self.fs.isfile(self._key(digest)))

    def _info(self, digest: Digest) -> dict[str, Any]:
        with storage_errors("stat", digest):
            info: dict[str, Any] = self.fs.info(self._key(digest))
            if info.get("type") != "file":  # a "folder" prefix is not an object
                raise FileNotFoundError(self._key(digest))
        return info

    def size(self, digest: Digest) -> int:
        return int(self._info(digest)["size"])

    def mtime(self, digest: Digest) -> float:
        info = self._info(digest)
        stamp = info.get("LastModified") or info.get("mtime") or info.get("created")
        if stamp is None:
            raise StorageError(f"{self.url} reports no modification time for {digest}")
        return float(stamp.timestamp() if hasattr(stamp, "timestamp") else stamp)

    def delete(self, digest: Digest) -> bool:
        with storage_errors("delete", digest):
            if not self.fs.isfile(self._key(digest)):
                return False
            self.fs.rm_file(self._key(digest))
            return True

    def iter_digests(self) -> Iterator[Digest]:
        with storage_errors(f"list {self.url}"):
            paths = self.fs.find(self.root)
        prefix = self.root + "/"
        for path in sorted(paths):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            digest = digest_from_parts(*parts) if len(parts) == 2 else None
            if digest is not None:
                yield digest

    def clean_tmp(self, older_than_seconds: float) -> int:
        # Nothing to clean: no temp objects are ever written; an interrupted multipart
        # upload is invisible and is best expired by a bucket lifecycle rule
        # (AbortIncompleteMultipartUpload), which needs no credentials to list uploads.
        return 0

    def local_path(self, digest: Digest) -> Path | None:
        return None
