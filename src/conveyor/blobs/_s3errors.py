"""S3 failures as conveyor errors that name the real cause (imported only with the S3 backend).

botocore, aiobotocore and s3fs raise a zoo of exceptions: ``EndpointConnectionError`` (not an
``OSError``), ``NoCredentialsError``, ``ClientError`` with a code, and s3fs's translations
of those into ``PermissionError``/``FileNotFoundError`` with the ``ClientError`` as cause.
:func:`s3_errors` turns each into a :class:`StorageError` (CLI exit code 4) saying which it
was: endpoint unreachable or not answering, no credentials, credentials refused, bucket
missing, permission denied; a missing *object* stays :class:`NotFound`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Final

from conveyor.errors import ConveyorError, NotFound, StorageError

from ._digest import Digest

__all__ = ["S3Context", "s3_errors"]

_UNREACHABLE: Final = frozenset({
    "EndpointConnectionError", "ConnectionClosedError", "ConnectTimeoutError", "ReadTimeoutError",
    "ConnectionError", "HTTPClientError", "ProxyConnectionError", "SSLError", "ClientConnectorError",
    "ServerDisconnectedError", "ClientOSError", "FSTimeoutError", "TimeoutError", "ConnectionRefusedError",
    "ConnectionResetError", "ServerTimeoutError",
})
_NO_CREDENTIALS: Final = frozenset({"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"})
_BAD_CREDENTIALS: Final = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "AuthFailure",
    "InvalidClientTokenId", "TokenRefreshRequired", "AuthorizationHeaderMalformed",
})
_DENIED: Final = frozenset({"AccessDenied", "403", "AllAccessDisabled", "Forbidden"})
_NO_BUCKET: Final = frozenset({"NoSuchBucket"})
_NO_KEY: Final = frozenset({"NoSuchKey", "404", "NotFound"})


class S3Context:
    """What an error message names: the store URL, the bucket and the endpoint."""

    def __init__(self, url: str, bucket: str, endpoint: str | None) -> None:
        self.url, self.bucket, self.endpoint = url, bucket, endpoint

    @property
    def where(self) -> str:
        return self.endpoint or "AWS S3 (no [store] s3_endpoint_url set)"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def classify(exc: BaseException) -> tuple[str, str | None]:
    """(cause, detail): cause is one of unreachable, no-credentials, bad-credentials,
    no-bucket, no-key, denied, other."""
    for item in _chain(exc):
        name = type(item).__name__
        if name in _NO_CREDENTIALS:
            return "no-credentials", str(item)
        code = _code(item)
        if code in _BAD_CREDENTIALS:
            return "bad-credentials", f"{code}: {item}"
        if code in _NO_BUCKET:
            return "no-bucket", str(item)
        if code in _DENIED:
            return "denied", f"{code}: {item}"
        if code in _NO_KEY:
            return "no-key", str(item)
        if name in _UNREACHABLE or isinstance(item, (ConnectionError, asyncio.TimeoutError)):
            return "unreachable", f"{name}: {item}"
    if isinstance(exc, FileNotFoundError):
        return "no-key", str(exc)
    if isinstance(exc, PermissionError):
        return "denied", str(exc)
    return "other", f"{type(exc).__name__}: {exc}"


def translate(exc: BaseException, action: str, ctx: S3Context, digest: Digest | None) -> ConveyorError:
    cause, detail = classify(exc)
    if cause == "no-key" and digest is not None:
        return NotFound("object", str(digest))
    if cause == "unreachable":
        return StorageError(
            f"{action} failed: cannot reach the S3 endpoint {ctx.where} ({detail})",
            hint="check that the server is up and that [store] s3_endpoint_url (CONVEYOR_STORE_S3_ENDPOINT_URL) "
            "names it; [store] s3_connect_timeout and s3_read_timeout bound the wait",
        )
    if cause == "no-credentials":
        return StorageError(
            f"{action} failed: no S3 credentials found for {ctx.url}",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment",
        )
    if cause == "bad-credentials":
        return StorageError(
            f"{action} failed: {ctx.where} refused the S3 credentials ({detail})",
            hint="check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the endpoint they belong to",
        )
    if cause == "no-bucket":
        return StorageError(
            f"{action} failed: bucket {ctx.bucket!r} of {ctx.url} does not exist at {ctx.where}",
            hint="create it first (conveyor does not create buckets), or fix [store] artifacts_url",
        )
    if cause == "denied":
        return StorageError(
            f"{action} failed: permission denied on {ctx.url} at {ctx.where} ({detail})",
            hint="the credentials need s3:GetObject, s3:PutObject, s3:ListBucket (and s3:DeleteObject for gc)",
        )
    return StorageError(f"{action} failed on {ctx.url}: {detail}")


@contextlib.contextmanager
def s3_errors(action: str, ctx: S3Context, digest: Digest | None = None) -> Iterator[None]:
    """Map any S3 client failure inside the block to a conveyor error (see module docstring)."""
    try:
        yield
    except ConveyorError:
        raise
    except Exception as exc:  # the S3 client stack raises many unrelated types
        raise translate(exc, action, ctx, digest) from None
