"""A blob-store backend over a ``conveyor server``'s ``/api/v1/datasets/{name}/blobs``.

Remote mode's ``conveyor.data`` runs the same ``BlobStore`` code (stat cache, manifests,
concurrency, verified checkouts) over HTTP: existence is asked in batches, objects are
streamed up (the server hashes them and refuses bytes that do not match the digest named in
the URL) and streamed down, on the keep-alive connections of one HTTP client with at most
``concurrency`` requests in flight. The client holds no store credentials.

Every request is scoped to one data set, and a download to one version when ``version`` is
given: the server serves an object only when it belongs to that data set (a version's own
digest, or an entry of that version's manifest) and the caller may read it. Listing,
deleting and garbage collection stay on the server.

``http`` is duck-typed (``conveyor.tracking._remote.Http``): ``request(method, path, *,
content=…, json=…, params=…, headers=…)`` raising conveyor errors and retrying, ``client``
(an ``httpx.Client`` for streamed downloads) and ``error(response)``.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final
from urllib.parse import quote

from conveyor.errors import ConveyorError, CorruptObject, StorageError

from ._backend import map_bounded
from ._digest import Blob, Digest, hash_stream, spool_hashed

__all__ = ["HttpBackend", "MAX_DIGESTS"]

#: Digests asked about in one "which are missing" request.
MAX_DIGESTS: Final = 10_000
_CHUNK: Final = 1024 * 1024
#: A download's retries: the backoff of remote mode's other requests (0.1 s doubling to 5 s).
_BACKOFF_FIRST, _BACKOFF_FACTOR, _BACKOFF_MAX = 0.1, 2.0, 5.0

Progress = Callable[[int, int], None]


class HttpBackend:
    """Objects of data set ``name`` (optionally of version ``version``) through the server."""

    def __init__(self, http: Any, name: str, *, version: int | None = None, concurrency: int = 8) -> None:
        self.http = http
        self.name = name
        self.version = version
        self.concurrency = max(1, concurrency)
        self._base = f"/datasets/{quote(name, safe='')}/blobs"
        self.url = f"{http.url}/api/v1{self._base}"

    def _params(self) -> dict[str, Any]:
        return {} if self.version is None else {"version": self.version}

    def _path(self, digest: Digest) -> str:
        return f"{self._base}/{digest}"

    def init(self) -> None:
        return None

    @contextlib.contextmanager
    def errors(self, action: str, digest: Digest | None = None) -> Iterator[None]:
        try:
            yield
        except ConveyorError:
            raise
        except OSError as exc:
            raise StorageError(f"{action} through {self.url} failed: {exc}") from exc
        except Exception as exc:  # httpx's transport errors while streaming
            if type(exc).__module__.startswith(("httpx", "httpcore")):
                raise StorageError(f"{action} through {self.url} failed: {type(exc).__name__}: {exc}") from exc
            raise

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Nothing to defer: the server's store makes each object durable before it answers."""
        return contextlib.nullcontext()

    # -- writing -------------------------------------------------------------------------------

    def _upload(self, digest: Digest, body: Callable[[], Any]) -> None:
        answer = self.http.request("PUT", self._path(digest), content=body,
                                   headers={"Content-Type": "application/octet-stream"})
        stored = answer.json().get("digest")
        if stored != str(digest):  # the server verifies; this guards against a confused proxy
            raise CorruptObject(f"the server stored {stored} for {digest}", hint="add the data again")

    def put_file(self, path: Path) -> tuple[Digest, int]:
        with open(path, "rb", buffering=0) as stream:
            blob = hash_stream(stream)
        if not self.exists(blob.digest):
            self._upload(blob.digest, lambda: open(path, "rb"))  # noqa: SIM115 - closed by Http
        return blob.digest, blob.size

    def put_stream(self, stream: BinaryIO) -> tuple[Digest, int]:
        # The URL names the digest: spool while hashing, then upload the spooled bytes.
        fd, name = tempfile.mkstemp(prefix="conveyor-upload-")
        try:
            with os.fdopen(fd, "wb") as spool:
                digest, size = spool_hashed(stream, spool)
            if not self.exists(digest):
                self._upload(digest, lambda: open(name, "rb"))  # noqa: SIM115 - closed by Http
            return digest, size
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)

    def put_files(self, paths: list[Path], *, workers: int | None = None, progress: Progress | None = None) -> list[Blob]:
        """Hash every file (``workers`` threads), ask once which objects the server lacks,
        upload those with ``concurrency`` requests in flight."""

        def digest_of(path: Path) -> Blob:
            with open(path, "rb", buffering=0) as stream:
                return hash_stream(stream)

        blobs = map_bounded(digest_of, paths, workers or min(8, os.cpu_count() or 1))
        missing = self._missing({b.digest for b in blobs})
        todo: dict[Digest, Path] = {}
        for path, blob in zip(paths, blobs, strict=True):
            if blob.digest in missing:
                todo.setdefault(blob.digest, path)
        done = len(paths) - len(todo)

        def upload(item: tuple[Digest, Path]) -> None:
            digest, path = item
            self._upload(digest, lambda: open(path, "rb"))  # noqa: SIM115 - closed by Http

        map_bounded(upload, sorted(todo.items(), key=lambda i: str(i[0])), self.concurrency,
                    progress=progress, offset=done, total=len(paths))
        return blobs

    # -- reading -------------------------------------------------------------------------------

    def open_read(self, digest: Digest) -> BinaryIO:
        """The object's bytes, streamed; a connection lost before or during the download is
        retried with the bounded backoff of ``[server] retry_seconds`` and resumed where it
        stopped (a ``Range`` request; a server that sends the whole object again has the
        bytes already read skipped). Whoever reads it verifies the digest anyway."""
        return io.BufferedReader(_ResumingStream(self, digest), buffer_size=_CHUNK)  # type: ignore[return-value]

    def _send(self, digest: Digest, offset: int, budget: float) -> tuple[Any, int]:
        """(streamed response from byte ``offset``, bytes of it to skip), retrying connection
        errors and 5xx answers for ``budget`` seconds; 4xx raise at once."""
        import httpx

        deadline = time.monotonic() + budget
        wait = _BACKOFF_FIRST
        while True:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            try:
                request = self.http.client.build_request("GET", self._path(digest), params=self._params(),
                                                         headers=headers)
                response = self.http.client.send(request, stream=True)
            except httpx.TransportError as exc:
                failure: ConveyorError = self._unreachable(digest, exc)
            else:
                if response.status_code < 400:
                    return response, self._skip(response, digest, offset)
                response.read()
                response.close()
                failure = self.http.error(response)
                if response.status_code < 500:
                    raise failure
            left = deadline - time.monotonic()
            if left <= 0:
                raise failure
            time.sleep(min(wait, left))
            wait = min(wait * _BACKOFF_FACTOR, _BACKOFF_MAX)

    def _skip(self, response: Any, digest: Digest, offset: int) -> int:
        if not offset or response.status_code == 200:
            return offset  # the whole object again: drop what was already read
        first = response.headers.get("content-range", "").removeprefix("bytes ").partition("-")[0]
        if response.status_code != 206 or first != str(offset):
            response.close()
            raise StorageError(f"resuming the download of {digest} through {self.url} at byte {offset} got "
                               f"{response.status_code} {response.headers.get('content-range')!r}",
                               hint="download it again (`conveyor data get`)")
        return 0

    def _unreachable(self, digest: Digest, exc: Exception) -> StorageError:
        retry = float(getattr(self.http, "retry_seconds", 0.0))
        failure = StorageError(f"download of {digest} through {self.url} failed: {type(exc).__name__}: {exc}",
                               hint=f"check that `conveyor server` runs there; retried for {retry:g} s "
                               "([server] retry_seconds, CONVEYOR_SERVER_RETRY_SECONDS)")
        failure.__cause__ = exc
        return failure

    def read_all(self, digest: Digest) -> bytes:
        return bytes(self.http.request("GET", self._path(digest), params=self._params()).content)

    def _missing(self, digests: set[Digest]) -> set[Digest]:
        ordered = sorted(digests, key=str)
        missing: set[Digest] = set()
        for start in range(0, len(ordered), MAX_DIGESTS):
            part = [str(d) for d in ordered[start : start + MAX_DIGESTS]]
            answer = self.http.request("POST", f"{self._base}/missing", json={"digests": part}).json()
            missing.update(Digest.parse(d) for d in answer["missing"])
        return missing

    def exists(self, digest: Digest) -> bool:
        return digest not in self._missing({digest})

    def exists_many(self, digests: Iterable[Digest]) -> set[Digest]:
        wanted = set(digests)
        return wanted - self._missing(wanted) if wanted else set()

    def size(self, digest: Digest) -> int:
        answer = self.http.request("HEAD", self._path(digest), params=self._params())
        return int(answer.headers["content-length"])

    def local_path(self, digest: Digest) -> Path | None:
        return None

    # -- what stays on the server ----------------------------------------------------------------

    def _server_only(self, what: str) -> ConveyorError:
        return ConveyorError(f"{what} runs on the conveyor server, not through {self.url}",
                             hint="run `conveyor gc` / `conveyor doctor` where the stores are")

    def sizes(self) -> dict[Digest, tuple[int, float]]:
        raise self._server_only("listing the artifact store")

    def iter_digests(self) -> Iterator[Digest]:
        raise self._server_only("listing the artifact store")

    def mtime(self, digest: Digest) -> float:
        raise self._server_only("reading an object's modification time")

    def delete(self, digest: Digest) -> bool:
        raise self._server_only("deleting objects")

    def clean_tmp(self, older_than_seconds: float) -> int:
        raise self._server_only("cleaning temporary files")

    def leftovers(self, older_than_seconds: float) -> tuple[int, int]:
        raise self._server_only("counting abandoned writes")


class _ResumingStream(io.RawIOBase):
    """A raw read stream over streamed ``httpx`` responses: when the connection drops in the
    middle, a new request resumes at the byte reached. Gives up when no byte arrived for
    ``retry_seconds`` of attempts."""

    def __init__(self, backend: HttpBackend, digest: Digest) -> None:
        self._backend = backend
        self._digest = digest
        self._retry = float(getattr(backend.http, "retry_seconds", 0.0))
        self._pos = 0
        self._left = b""
        self._failed_at: float | None = None
        self._response: Any = None
        self._open(self._retry)

    def _open(self, budget: float) -> None:
        self._response, skip = self._backend._send(self._digest, self._pos, budget)
        self._chunks = self._response.iter_bytes(_CHUNK)
        self._skip = skip

    def _resume(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._failed_at is None:
            self._failed_at = now
        left = self._retry - (now - self._failed_at)
        self._response.close()
        if left <= 0:
            raise self._backend._unreachable(self._digest, exc)
        time.sleep(min(_BACKOFF_FIRST, left))
        self._open(left)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            try:
                chunk = next(self._chunks, None)
            except Exception as exc:  # httpx's transport errors: the connection dropped
                if not _transport_error(exc):
                    raise
                self._resume(exc)
                continue
            if chunk is None:
                return 0
            if self._skip:
                drop = min(self._skip, len(chunk))
                self._skip -= drop
                chunk = chunk[drop:]
            self._left = chunk
            if chunk:
                self._failed_at = None  # progress: a later drop gets a fresh retry budget
        count = min(len(buffer), len(self._left))
        buffer[:count] = self._left[:count]
        self._left = self._left[count:]
        self._pos += count
        return count

    def close(self) -> None:
        if not self.closed and self._response is not None:
            self._response.close()
        super().close()


def _transport_error(exc: Exception) -> bool:
    import httpx

    return isinstance(exc, httpx.TransportError)
