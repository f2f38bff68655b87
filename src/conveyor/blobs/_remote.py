"""fsspec backend for S3 and S3-compatible object storage (through s3fs).

Object stores have no rename, so atomicity comes from the upload itself: the key is the
digest, computed *before* the upload, and the object only appears when the upload is
complete. An object up to one part (8 MiB) is read into memory, hashed, and sent as ONE
``PutObject`` of exactly those bytes; a bigger one goes up as a multipart upload whose
bytes are hashed again on the way and which is aborted unless they still match. Either
way a source file changed mid-upload can never land under a wrong name.

Many objects at once (``put_files``, ``get_many``, ``exists_many``, ``sizes``) run as
concurrent requests from a bounded thread pool (``[store] s3_max_concurrency``), and
existence is answered from listings of the fan-out folders a batch touches, not one
``HeadObject`` per object.

Leftovers: an interrupted multipart upload is invisible but stored. After a multipart
upload of a key completes, other incomplete uploads of that same key are aborted (they are
provably redundant: the object now exists), and ``clean_tmp`` (``conveyor gc``) aborts every
incomplete upload whose object exists, whatever its age, and the others past the grace
period. It also empties the server's upload staging area (``.uploads/``, see
``conveyor.server._staging_s3``) of uploads whose record is older than the grace period.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final

from conveyor.errors import StorageError

from ._backend import digest_from_parts, map_bounded, object_relpath
from ._digest import CHUNK_SIZE, Blob, Digest, hash_bytes, hash_stream, new_hasher, read_chunks, spool_hashed
from ._s3errors import S3Context, s3_errors

if TYPE_CHECKING:
    import fsspec

__all__ = ["FsspecBackend", "fast_timestamp", "s3_session"]

# S3 allows 10 000 parts of at least 5 MiB. 8 MiB parts keep the client's memory flat
# (s3fs and botocore hold a few copies of the part in flight: ~40 MiB peak measured) and
# reach 70 GB before the part size grows with the input.
_PART_SIZE: Final = 8 * 1024 * 1024
_MAX_PARTS: Final = 9_000
#: Objects up to this size are read/written whole in one request (and held in memory).
_SMALL: Final = _PART_SIZE
#: Below this many digests, HEAD each one; above, list the fan-out folders they live in.
_HEAD_BELOW: Final = 16

Progress = Callable[[int, int], None]


def fast_timestamp(text: str) -> datetime:
    """An S3 timestamp as an aware datetime: ISO 8601 (listings' ``LastModified``) by the
    standard library, anything else (HTTP dates in headers) by botocore's own parser.

    botocore parses every timestamp with dateutil, ~0.1 ms each: for a listing of 4,000
    objects that was most of the client's CPU time in ``doctor --quick``.
    """
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        from botocore.utils import parse_timestamp

        parsed: datetime = parse_timestamp(text)
        return parsed
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)


def s3_session() -> Any:
    """An aiobotocore session for s3fs whose response parser uses :func:`fast_timestamp`."""
    from aiobotocore.session import AioSession

    session = AioSession()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=fast_timestamp)
    return session


class FsspecBackend:
    """Objects under ``<root>`` of an fsspec filesystem (``bucket/prefix`` on S3)."""

    def __init__(
        self, fs: fsspec.AbstractFileSystem, root: str, url: str, *, endpoint: str | None = None, concurrency: int = 32
    ) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url
        self.bucket, _, prefix = self.root.partition("/")
        self._prefix = f"{prefix}/" if prefix else ""
        self.concurrency = max(1, concurrency)
        self._ctx = S3Context(url, self.bucket, endpoint)
        self.page_size = 1000  # S3's maximum; tests lower it to exercise split listings

    def _key(self, digest: Digest) -> str:
        return f"{self.root}/{object_relpath(digest)}"

    def _object_key(self, digest: Digest) -> str:
        """The key inside the bucket (no bucket name)."""
        return f"{self._prefix}{object_relpath(digest)}"

    def errors(self, action: str, digest: Digest | None = None) -> contextlib.AbstractContextManager[None]:
        return s3_errors(action, self._ctx, digest)

    def _call(self, method: str, **kwargs: Any) -> Any:
        return self.fs.call_s3(method, **kwargs)  # type: ignore[attr-defined]

    def init(self) -> None:
        # Object stores have no folders to create; check the bucket is reachable instead,
        # so a bad URL or credentials fail at `init` rather than at the first write.
        with self.errors(f"open store {self.url}"):
            try:
                self._call("head_bucket", Bucket=self.bucket)
            except (FileNotFoundError, PermissionError):
                # A HEAD answer has no body, so no error code: ask with a request that has one
                # (NoSuchBucket, AccessDenied, InvalidAccessKeyId, …).
                self._call("list_objects_v2", Bucket=self.bucket, MaxKeys=1)

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Nothing to defer: an object store's PUT is durable when it returns."""
        return contextlib.nullcontext()

    # -- writing -------------------------------------------------------------------------------

    def _put_small(self, digest: Digest, data: bytes) -> None:
        with self.errors(f"upload to {self.url}"):
            self._call("put_object", Bucket=self.bucket, Key=self._object_key(digest), Body=data)

    def put_file(self, path: Path) -> tuple[Digest, int]:
        blob = self._put_path(path, known=None)
        return blob.digest, blob.size

    def _put_path(self, path: Path, known: Blob | None, *, check: bool = True) -> Blob:
        """Store one file; ``known`` is its hash from a first pass (the upload re-checks it)."""
        with open(path, "rb", buffering=0) as stream:
            size = os.fstat(stream.fileno()).st_size
            if size <= _SMALL:
                data = stream.read(_SMALL + 1)
                blob = Blob(hash_bytes(data), len(data))
                if known is not None and blob != known:
                    raise StorageError(f"{path} changed while being stored (expected {known.digest}); nothing was written")
                if len(data) <= _SMALL and (not check or not self.exists(blob.digest)):
                    self._put_small(blob.digest, data)
                    return blob
                if len(data) <= _SMALL:
                    return blob
                stream.seek(0)  # it grew past one part meanwhile: stream it
            blob = known or hash_stream(stream)
            if not check or not self.exists(blob.digest):
                stream.seek(0)
                self._upload(stream, blob.digest, blob.size, source=str(path))
        return blob

    def put_files(self, paths: list[Path], *, workers: int | None = None, progress: Progress | None = None) -> list[Blob]:
        """Store many files: hash them, ask once which objects exist, upload the rest concurrently."""
        blobs: list[Blob] = []
        for path in paths:
            with open(path, "rb", buffering=0) as stream:
                blobs.append(hash_stream(stream))
        present = self.exists_many({b.digest for b in blobs})
        todo: dict[Digest, tuple[Path, Blob]] = {}
        for path, blob in zip(paths, blobs, strict=True):
            if blob.digest not in present:
                todo.setdefault(blob.digest, (path, blob))
        done = len(paths) - len(todo)
        small = [item for item in todo.values() if item[1].size <= _SMALL]
        large = [item for item in todo.values() if item[1].size > _SMALL]

        def upload(item: tuple[Path, Blob]) -> None:
            self._put_path(item[0], item[1], check=False)

        map_bounded(upload, small, self.concurrency, progress=progress, offset=done, total=len(paths))
        # Big files one by one: each is already a multipart upload of 8 MiB parts.
        map_bounded(upload, large, 1, progress=progress, offset=done + len(small), total=len(paths))
        return blobs

    def put_stream(self, stream: BinaryIO) -> tuple[Digest, int]:
        # The key needs the digest before the upload starts: spool locally while hashing.
        with tempfile.TemporaryFile() as spool:
            digest, size = spool_hashed(stream, spool)
            if not self.exists(digest):
                spool.seek(0)
                if size <= _SMALL:
                    self._put_small(digest, spool.read())
                else:
                    self._upload(spool, digest, size, source="stream")
        return digest, size

    def _upload(self, stream: BinaryIO, digest: Digest, size: int, *, source: str) -> None:
        part = max(_PART_SIZE, math.ceil(size / _MAX_PARTS))
        with self.errors(f"upload to {self.url}"):
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
                    with contextlib.suppress(Exception):
                        out.discard()
        # The object exists now: any other incomplete upload of this key is redundant.
        with contextlib.suppress(Exception):
            self._abort_uploads(self._object_key(digest), lambda _upload: True)

    # -- reading -------------------------------------------------------------------------------

    def open_read(self, digest: Digest) -> BinaryIO:
        with self.errors("open", digest):
            stream: BinaryIO = self.fs.open(self._key(digest), "rb", block_size=CHUNK_SIZE)
            return stream

    def read_all(self, digest: Digest) -> bytes:
        """A small object in one ``GetObject``."""
        with self.errors("read", digest):
            # max_concurrency=1: otherwise s3fs asks for the size first (a HEAD per object).
            return bytes(self.fs.cat_file(self._key(digest), max_concurrency=1))

    def exists(self, digest: Digest) -> bool:
        with self.errors("check", digest):
            try:
                self._call("head_object", Bucket=self.bucket, Key=self._object_key(digest))
            except FileNotFoundError:
                return False
            return True

    def exists_many(self, digests: Iterable[Digest]) -> set[Digest]:
        """Which of ``digests`` are stored: HEADs for a few, listings of their prefixes for many."""
        wanted = set(digests)
        if len(wanted) < _HEAD_BELOW:
            ordered = sorted(wanted, key=str)
            found = map_bounded(self.exists, ordered, self.concurrency)
            return {d for d, ok in zip(ordered, found, strict=True) if ok}
        return wanted & set(self._listing({d.hex[0] for d in wanted}))

    def _list(self, prefix: str, *, pages: int | None = None) -> tuple[list[dict[str, Any]], bool]:
        """Objects under ``prefix`` (up to ``pages`` pages of 1,000); True when all were listed."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": self.page_size}
        while pages is None or pages > 0:
            page = self._call("list_objects_v2", **kwargs)
            items.extend(page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return items, True
            kwargs["ContinuationToken"] = token
            pages = None if pages is None else pages - 1
        return items, False

    def _parse(self, items: list[dict[str, Any]]) -> dict[Digest, tuple[int, float]]:
        out: dict[Digest, tuple[int, float]] = {}
        for item in items:
            parts = str(item["Key"])[len(self._prefix) :].split("/")
            digest = digest_from_parts(*parts) if len(parts) == 2 else None
            if digest is not None:
                stamp = item.get("LastModified")
                out[digest] = (int(item["Size"]), stamp.timestamp() if stamp is not None else 0.0)
        return out

    def _listing(self, nibbles: Iterable[str]) -> dict[Digest, tuple[int, float]]:
        """Digest → (size, mtime) of the objects whose hex starts with one of ``nibbles``.

        Each nibble's prefix is listed concurrently (one page each: 16 requests cover a store
        of up to 16,000 objects in one round trip); a prefix with more than one page is
        split into its 16 fan-out folders, listed concurrently too.
        """
        def first(nibble: str) -> tuple[str, list[dict[str, Any]], bool]:
            items, complete = self._list(f"{self._prefix}{nibble}", pages=1)
            return nibble, items, complete

        def folder(name: str) -> list[dict[str, Any]]:
            return self._list(f"{self._prefix}{name}/")[0]

        out: dict[Digest, tuple[int, float]] = {}
        with self.errors(f"list {self.url}"):
            split: list[str] = []
            for nibble, items, complete in map_bounded(first, sorted(set(nibbles)), self.concurrency):
                if complete:
                    out.update(self._parse(items))
                else:
                    split.extend(f"{nibble}{c}" for c in "0123456789abcdef")
            for items in map_bounded(folder, split, self.concurrency):
                out.update(self._parse(items))
        return out

    def sizes(self) -> dict[Digest, tuple[int, float]]:
        """Every object with its size and mtime, from concurrent listings (see ``_listing``)."""
        return self._listing("0123456789abcdef")

    def _info(self, digest: Digest) -> dict[str, Any]:
        with self.errors("stat", digest):
            info: dict[str, Any] = self._call("head_object", Bucket=self.bucket, Key=self._object_key(digest))
        return info

    def size(self, digest: Digest) -> int:
        return int(self._info(digest)["ContentLength"])

    def mtime(self, digest: Digest) -> float:
        stamp = self._info(digest).get("LastModified")
        if stamp is None:
            raise StorageError(f"{self.url} reports no modification time for {digest}")
        return float(stamp.timestamp())

    def delete(self, digest: Digest) -> bool:
        if not self.exists(digest):
            return False
        with self.errors("delete", digest):
            self._call("delete_object", Bucket=self.bucket, Key=self._object_key(digest))
        return True

    def iter_digests(self) -> Iterator[Digest]:
        yield from sorted(self.sizes(), key=str)

    # -- leftovers -----------------------------------------------------------------------------

    def _uploads(self, prefix: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            page = self._call("list_multipart_uploads", **kwargs)
            found.extend(page.get("Uploads", []))
            if not page.get("IsTruncated"):
                return found
            kwargs["KeyMarker"] = page.get("NextKeyMarker")
            kwargs["UploadIdMarker"] = page.get("NextUploadIdMarker")

    def _abort_uploads(self, prefix: str, doomed: Callable[[dict[str, Any]], bool]) -> int:
        removed = 0
        for upload in self._uploads(prefix):
            if doomed(upload):
                self._call("abort_multipart_upload", Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                removed += 1
        return removed

    def _upload_digest(self, upload: dict[str, Any]) -> Digest | None:
        parts = str(upload["Key"])[len(self._prefix) :].split("/")
        return digest_from_parts(*parts) if len(parts) == 2 else None

    def clean_tmp(self, older_than_seconds: float) -> int:
        """Abort incomplete multipart uploads: at once when their object exists, else past the age."""
        cutoff = time.time() - older_than_seconds
        with self.errors(f"clean incomplete uploads of {self.url}"):
            uploads = self._uploads(self._prefix)
            digests = {d for u in uploads if (d := self._upload_digest(u)) is not None}
            present = self.exists_many(digests) if digests else set()

            def doomed(upload: dict[str, Any]) -> bool:
                digest = self._upload_digest(upload)
                if digest is None:
                    return False  # not ours
                started = upload.get("Initiated")
                return digest in present or (started is not None and started.timestamp() < cutoff)

            return self._abort_uploads(self._prefix, doomed) + self._clean_staging(cutoff)

    def _clean_staging(self, cutoff: float) -> int:
        """The server's upload staging area (``.uploads/``, see ``server/_staging_s3.py``): abort its
        multipart uploads and delete its objects older than the cutoff."""
        staging = f"{self._prefix}.uploads/"
        items, _ = self._list(staging)

        def young(item: dict[str, Any]) -> bool:
            return item.get("LastModified") is None or item["LastModified"].timestamp() >= cutoff

        # Every part refreshes its upload's record (<id>.json): an upload is alive while that is young.
        alive = {str(item["Key"]).removesuffix(".json") for item in items
                 if young(item) and str(item["Key"]).endswith(".json")}
        removed = self._abort_uploads(staging, lambda upload: upload["Key"] not in alive and (
            upload.get("Initiated") is None or upload["Initiated"].timestamp() < cutoff))
        old = [{"Key": item["Key"]} for item in items
               if not young(item) and str(item["Key"]).removesuffix(".json") not in alive]
        for start in range(0, len(old), 1000):
            self._call("delete_objects", Bucket=self.bucket,
                       Delete={"Objects": old[start : start + 1000], "Quiet": True})
        return removed + len(old)

    def leftovers(self, older_than_seconds: float) -> tuple[int, int]:
        """(count, 0) of incomplete uploads older than the age (S3 does not list their bytes cheaply)."""
        cutoff = time.time() - older_than_seconds
        with self.errors(f"list incomplete uploads of {self.url}"):
            uploads = [u for u in self._uploads(self._prefix) if self._upload_digest(u) is not None]
        stale = [u for u in uploads if u.get("Initiated") is None or u["Initiated"].timestamp() < cutoff]
        return len(stale), 0

    def local_path(self, digest: Digest) -> Path | None:
        return None

