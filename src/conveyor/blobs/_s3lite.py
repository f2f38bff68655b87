"""A read-only S3 backend on botocore alone, for ``conveyor doctor --quick``'s fast path.

``doctor --quick`` lists the store, lists its incomplete uploads and reads the referenced
manifests: a few dozen requests. With s3fs that costs importing s3fs, fsspec and
aiobotocore and creating an aiobotocore client — most of the command's CPU time on a
loaded machine. This backend is :class:`~conveyor.blobs._remote.FsspecBackend`'s own
listing, leftover and read logic (inherited, so both answer the same) sending its requests
through one synchronous botocore client (thread-safe, with a keep-alive pool of
``[store] s3_max_concurrency`` connections) with the same timeouts, retries and timestamp
parser. It writes nothing: every writing method is refused.
"""

from __future__ import annotations

from typing import Any

from ._digest import Digest
from ._remote import FsspecBackend, fast_timestamp

__all__ = ["BotocoreReader", "open_reader"]


class BotocoreReader(FsspecBackend):
    """Listings and whole-object reads of ``s3://bucket/prefix`` through a botocore client."""

    def __init__(self, client: Any, root: str, url: str, *, endpoint: str | None, concurrency: int) -> None:
        super().__init__(None, root, url, endpoint=endpoint, concurrency=concurrency)  # type: ignore[arg-type]
        self._client = client
        #: sizes from the last full listing: a manifest's size without a HEAD request
        self._known: dict[Digest, int] = {}

    def _call(self, method: str, **kwargs: Any) -> Any:
        return getattr(self._client, method)(**kwargs)

    def sizes(self) -> dict[Digest, tuple[int, float]]:
        found = super().sizes()
        self._known = {digest: size for digest, (size, _) in found.items()}
        return found

    def size(self, digest: Digest) -> int:
        known = self._known.get(digest)
        return known if known is not None else int(self._info(digest)["ContentLength"])

    def read_all(self, digest: Digest) -> bytes:
        with self.errors("read", digest):
            body = self._call("get_object", Bucket=self.bucket, Key=self._object_key(digest))["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the botocore reader only reads (it serves doctor --quick)")

    init = put_file = put_files = put_stream = open_read = delete = clean_tmp = _refuse  # type: ignore[assignment]


def open_reader(
    url: str, endpoint_url: str | None, *, connect_timeout: float, read_timeout: float, max_attempts: int, concurrency: int
) -> BotocoreReader:
    """A reader for ``s3://bucket/prefix`` configured as ``BlobStore.open`` configures s3fs."""
    import botocore.session
    from botocore.config import Config

    root = url.removeprefix("s3://").strip("/")
    if not root:
        raise ValueError(f"{url!r} names no bucket")
    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=fast_timestamp)
    client = session.create_client("s3", endpoint_url=endpoint_url or None, config=Config(
        connect_timeout=connect_timeout, read_timeout=read_timeout,
        retries={"total_max_attempts": max_attempts, "mode": "standard"}, max_pool_connections=concurrency,
    ))
    return BotocoreReader(client, root, url, endpoint=endpoint_url, concurrency=concurrency)
