"""The storage-backend contract behind :class:`BlobStore`, and the error mapping.

A backend knows the object layout (``<root>/<hex[:2]>/<hex[2:]>``) and how to make a write
atomic on its medium; everything format-level (manifests, verification, materializing
files) lives in the store, so a new backend only implements these primitives.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Final, Protocol, TypeVar

from conveyor.errors import ConveyorError, NotFound, StorageError

from ._digest import ALGORITHM, Blob, Digest

__all__ = ["TMP_DIR", "Backend", "digest_from_parts", "map_bounded", "object_relpath", "storage_errors"]

T = TypeVar("T")
R = TypeVar("R")

# Temp files live under the root so a rename into place never crosses filesystems.
TMP_DIR: Final = ".tmp"


class Backend(Protocol):
    """What a storage medium must offer; see ``_local.py`` and ``_remote.py``."""

    url: str
    concurrency: int  # how many objects to move at once in put_files / get_tree

    def init(self) -> None: ...
    def errors(self, action: str, digest: Digest | None = None) -> contextlib.AbstractContextManager[None]: ...
    def put_stream(self, stream: BinaryIO) -> tuple[Digest, int]: ...
    def put_file(self, path: Path) -> tuple[Digest, int]: ...
    def put_files(self, paths: list[Path], *, workers: int | None = None, progress: Callable[[int, int], None] | None = None) -> list[Blob]: ...
    def batch(self) -> contextlib.AbstractContextManager[object]: ...
    def open_read(self, digest: Digest) -> BinaryIO: ...
    def read_all(self, digest: Digest) -> bytes: ...
    def exists(self, digest: Digest) -> bool: ...
    def exists_many(self, digests: Iterable[Digest]) -> set[Digest]: ...
    def sizes(self) -> dict[Digest, tuple[int, float]]: ...
    def size(self, digest: Digest) -> int: ...
    def mtime(self, digest: Digest) -> float: ...
    def delete(self, digest: Digest) -> bool: ...
    def iter_digests(self) -> Iterator[Digest]: ...
    def clean_tmp(self, older_than_seconds: float) -> int: ...
    def leftovers(self, older_than_seconds: float) -> tuple[int, int]: ...
    def local_path(self, digest: Digest) -> Path | None: ...


def object_relpath(digest: Digest) -> str:
    """``<hex[:2]>/<hex[2:]>``: fan out over 256 folders so none grows huge."""
    return f"{digest.hex[:2]}/{digest.hex[2:]}"


def digest_from_parts(folder: str, name: str) -> Digest | None:
    """The digest stored at ``folder/name``, or None for anything that is not an object."""
    if len(folder) != 2 or len(name) != 62:
        return None
    try:
        return Digest(ALGORITHM, folder + name)
    except ConveyorError:
        return None


@contextlib.contextmanager
def storage_errors(action: str, digest: Digest | None = None) -> Iterator[None]:
    """Turn medium errors into conveyor's: missing → NotFound, other I/O → StorageError."""
    try:
        yield
    except ConveyorError:
        raise
    except FileNotFoundError as exc:
        if digest is None:
            raise StorageError(f"{action} failed: {exc}") from exc
        raise NotFound("object", str(digest)) from None
    except OSError as exc:
        raise StorageError(f"{action} failed: {exc}") from exc


def map_bounded(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    *,
    progress: Callable[[int, int], None] | None = None,
    offset: int = 0,
    total: int | None = None,
) -> list[R]:
    """``[fn(x) for x in items]`` on at most ``workers`` threads, results in order.

    The first failure cancels what has not started and is raised. ``progress(done, total)``
    is called as results arrive (``offset`` counts work done before).
    """
    count = total if total is not None else offset + len(items)
    if workers <= 1 or len(items) <= 1:
        out = []
        for n, item in enumerate(items, 1):
            out.append(fn(item))
            if progress is not None and (n % 64 == 0 or n == len(items)):
                progress(offset + n, count)
        return out
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        # Each call runs in a copy of the caller's context, so it joins an open blobs.batch().
        futures = [pool.submit(contextvars.copy_context().run, fn, item) for item in items]
        try:
            results = []
            for n, future in enumerate(futures, 1):
                results.append(future.result())
                if progress is not None and (n % 64 == 0 or n == len(items)):
                    progress(offset + n, count)
            return results
        except BaseException:
            for pending in futures:
                pending.cancel()
            raise
