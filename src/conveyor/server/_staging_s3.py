"""Uploads of an S3 artifact store: S3's own multipart upload on a staging key.

Layout under the store's prefix: ``.uploads/<id>.json`` (the record) and ``.uploads/<id>``
(the multipart upload while parts arrive, or the target of a presigned PUT). On completion
the staging object is read back once and hashed (conveyor's digest is BLAKE3, which S3 cannot
check), copied to its content address only when it matches, and the staging keys are
removed: a wrong or tampered upload never becomes visible. ``conveyor gc`` removes staging
keys and incomplete multipart uploads past the grace period (``blobs/_remote.py``).

A presigned PUT carries ``x-amz-checksum-sha256`` as a signed header, so real S3 refuses
bytes that do not match the SHA-256 the client announced; the S3 emulator used by the tests
(moto) does not enforce it, which is why the read-back above is the check that counts.

This talks to S3 with a synchronous botocore client (a part is sent from its spool file,
never held in memory); credentials come from the environment, as for the store itself.
Presigned URLs are computed locally and never logged.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Final

from conveyor.blobs import Blob, Digest
from conveyor.blobs._digest import ALGORITHM, CHUNK_SIZE, new_hasher
from conveyor.errors import Conflict, NotFound, StorageError
from conveyor.server._staging import MIN_PART_S3, Upload, mismatch

__all__ = ["S3Staging"]

#: CopyObject copies at most 5 GiB; bigger objects are copied in ranges of this size.
_COPY_LIMIT: Final = 5 * 1024**3
_COPY_PART: Final = 1024**3
_STAGING: Final = ".uploads/"


def _code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


class S3Staging:
    min_part = MIN_PART_S3
    spool_dir: Path | None = None

    def __init__(self, blobs: Any) -> None:
        import botocore.session
        from botocore.config import Config

        backend = blobs._backend
        options = blobs.open_options
        self.bucket: str = backend.bucket
        self.prefix: str = backend._prefix
        self.url = blobs.url
        self.client = botocore.session.get_session().create_client(
            "s3", endpoint_url=options.get("s3_endpoint_url") or None,
            config=Config(signature_version="s3v4",
                          connect_timeout=options.get("s3_connect_timeout", 5.0),
                          read_timeout=max(float(options.get("s3_read_timeout", 10.0)), 60.0),
                          retries={"total_max_attempts": int(options.get("s3_max_attempts", 3)), "mode": "standard"}))

    # -- keys ------------------------------------------------------------------------------------
    def _data(self, upload_id: str) -> str:
        return f"{self.prefix}{_STAGING}{upload_id}"

    def _meta(self, upload_id: str) -> str:
        return f"{self.prefix}{_STAGING}{upload_id}.json"

    def object_key(self, digest: Digest) -> str:
        return f"{self.prefix}{digest.hex[:2]}/{digest.hex[2:]}"

    @contextlib.contextmanager
    def _errors(self, action: str, upload_id: str | None = None) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            if upload_id is not None and _code(exc) in ("NoSuchUpload", "NoSuchKey", "404"):
                raise NotFound("upload", upload_id) from None
            raise StorageError(f"{action} on {self.url} failed: {_code(exc) or exc}") from None
        except BotoCoreError as exc:
            raise StorageError(f"{action} on {self.url} failed: {exc}") from None

    # -- the contract ----------------------------------------------------------------------------
    def create(self, upload: Upload) -> Upload:
        from dataclasses import replace

        with self._errors("start an upload"):
            if upload.mode == "parts":
                answer = self.client.create_multipart_upload(Bucket=self.bucket, Key=self._data(upload.id))
                upload = replace(upload, s3_upload_id=answer["UploadId"])
            self.client.put_object(Bucket=self.bucket, Key=self._meta(upload.id), Body=upload.to_json())
        return upload

    def load(self, upload_id: str) -> Upload:
        with self._errors("read an upload", upload_id):
            body = self.client.get_object(Bucket=self.bucket, Key=self._meta(upload_id))["Body"]
            data = body.read()
        return Upload.from_json(data, upload_id)

    def put_part(self, upload: Upload, number: int, received: Path) -> None:
        with self._errors(f"store part {number}", upload.id), open(received, "rb") as body:
            self.client.upload_part(Bucket=self.bucket, Key=self._data(upload.id), UploadId=upload.s3_upload_id,
                                    PartNumber=number, Body=body, ContentLength=received.stat().st_size)
            # a fresh record tells `conveyor gc` the upload is alive (see FsspecBackend._clean_staging)
            self.client.put_object(Bucket=self.bucket, Key=self._meta(upload.id), Body=upload.to_json())

    def _listed_parts(self, upload: Upload) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._data(upload.id), "UploadId": upload.s3_upload_id}
        with self._errors("list parts", upload.id):
            while True:
                page = self.client.list_parts(**kwargs)
                found.extend(page.get("Parts", []))
                if not page.get("IsTruncated"):
                    return found
                kwargs["PartNumberMarker"] = page["NextPartNumberMarker"]

    def parts(self, upload: Upload) -> dict[int, int]:
        if upload.mode != "parts":
            return {}
        return {int(p["PartNumber"]): int(p["Size"]) for p in self._listed_parts(upload)}

    def assemble(self, upload: Upload) -> Blob:
        digest = Digest.parse(upload.digest)
        key = self._data(upload.id)
        if upload.mode == "parts":
            listed = sorted(self._listed_parts(upload), key=lambda p: int(p["PartNumber"]))
            with self._errors("complete an upload", upload.id):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload.s3_upload_id,
                    MultipartUpload={"Parts": [{"ETag": p["ETag"], "PartNumber": p["PartNumber"]} for p in listed]})
        hasher, size = new_hasher(upload.size), 0
        with self._errors("verify an upload"):
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            except Exception as exc:  # noqa: BLE001 - only "missing" is the client's fault
                if _code(exc) in ("NoSuchKey", "404"):
                    raise Conflict(f"upload {upload.id}: nothing was uploaded to its presigned URL yet",
                                   hint="PUT the file to the URL first, then complete") from None
                raise
            with contextlib.closing(body):
                for chunk in body.iter_chunks(CHUNK_SIZE):
                    hasher.update(chunk)
                    size += len(chunk)
        actual = f"{ALGORITHM}:{hasher.hexdigest()}"
        if actual != upload.digest or size != upload.size:
            self.discard(upload)
            raise mismatch(upload, actual, size)
        self._copy(key, self.object_key(digest), size)
        self.discard(upload)
        return Blob(digest, size)

    def _copy(self, source: str, target: str, size: int) -> None:
        """Server-side copy of the verified staging object to its content address."""
        with self._errors("store the verified upload"):
            origin = {"Bucket": self.bucket, "Key": source}
            if size <= _COPY_LIMIT:
                self.client.copy_object(Bucket=self.bucket, Key=target, CopySource=origin)
                return
            started = self.client.create_multipart_upload(Bucket=self.bucket, Key=target)["UploadId"]
            try:
                parts = []
                for number, first in enumerate(range(0, size, _COPY_PART), 1):
                    last = min(first + _COPY_PART, size) - 1
                    answer = self.client.upload_part_copy(
                        Bucket=self.bucket, Key=target, UploadId=started, PartNumber=number, CopySource=origin,
                        CopySourceRange=f"bytes={first}-{last}")
                    parts.append({"ETag": answer["CopyPartResult"]["ETag"], "PartNumber": number})
                self.client.complete_multipart_upload(Bucket=self.bucket, Key=target, UploadId=started,
                                                      MultipartUpload={"Parts": parts})
            except BaseException:
                with contextlib.suppress(Exception):
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=target, UploadId=started)
                raise

    def discard(self, upload: Upload) -> None:
        from botocore.exceptions import ClientError

        with self._errors("remove an upload"):
            if upload.s3_upload_id:
                with contextlib.suppress(ClientError):  # already completed or aborted
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._data(upload.id),
                                                       UploadId=upload.s3_upload_id)
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [
                {"Key": self._data(upload.id)}, {"Key": self._meta(upload.id)}], "Quiet": True})

    def sweep(self) -> int:
        """Remove the uploads whose expiry passed (one listing page: the next start does more)."""
        now, removed = time.time(), 0
        with self._errors("list uploads"):
            page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=f"{self.prefix}{_STAGING}", MaxKeys=1000)
        for item in page.get("Contents", []):
            key = str(item["Key"])
            if not key.endswith(".json"):
                continue
            with contextlib.suppress(NotFound, StorageError, ValueError, TypeError, KeyError):
                upload = self.load(key.rsplit("/", 1)[1].removesuffix(".json"))
                if upload.expires < now:
                    self.discard(upload)
                    removed += 1
        return removed

    # -- presigned URLs (never logged) -------------------------------------------------------------
    def presign_put(self, upload: Upload, sha256_b64: str, seconds: int) -> tuple[str, dict[str, str]]:
        """A URL the client PUTs the whole file to, and the headers it must send with it."""
        url = self.client.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": self._data(upload.id), "ChecksumSHA256": sha256_b64},
            ExpiresIn=seconds)
        return str(url), {"x-amz-checksum-sha256": sha256_b64}

    def presign_get(self, digest: Digest, seconds: int, media_type: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.object_key(digest)}
        if media_type:
            params["ResponseContentType"] = media_type
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds))
