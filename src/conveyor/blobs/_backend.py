"""The storage-backend contract behind :class:`BlobStore`, and the error mapping.

A backend knows the object layout (``<root>/<hex[:2]>/<hex[2:]>``) and how to make a write
atomic on its medium; everything format-level (manifests, verification, materializing
files) lives in the store, so a new backend only implements these primitives.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final, Protocol

from conveyor.errors import ConveyorError, NotFound, StorageError

from ._digest import ALGORITHM, Digest

__all__ = ["TMP_DIR", "Backend", "digest_from_parts", "object_relpath", "storage_errors"]

# Temp files live under the root so a rename into place never crosses filesystems.
TMP_DIR: Final = ".tmp"


class Backend(Protocol):
    """What a storage medium must offer; see ``_local.py`` and ``_remote.py``."""

    url: str

    def init(self) -> None: ...
    def put_stream(self, stream: BinaryIO) -> tuple[Digest, int]: ...
    def put_file(self, path: Path) -> tuple[Digest, int]: ...
    def batch(self) -> contextlib.AbstractContextManager[object]: ...
    def open_read(self, digest: Digest) -> BinaryIO: ...
    def exists(self, digest: Digest) -> bool: ...
    def size(self, digest: Digest) -> int: ...
    def mtime(self, digest: Digest) -> float: ...
    def delete(self, digest: Digest) -> bool: ...
    def iter_digests(self) -> Iterator[Digest]: ...
    def clean_tmp(self, older_than_seconds: float) -> int: ...
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
