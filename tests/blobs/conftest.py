"""Fixtures for the artifact-store tests: one `store` fixture over every backend."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# tests/ is not a package: make tests/fixtures importable as `fixtures`.
_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from fixtures.s3 import s3_bucket_url, s3_server  # noqa: E402

from conveyor.blobs import BlobStore, Digest  # noqa: E402

__all__ = ["s3_bucket_url", "s3_server"]  # re-exported as fixtures


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """An initialized, empty store: a local folder, or a fresh bucket on moto."""
    if request.param == "local":
        blob_store = BlobStore.open(tmp_path / "store")
    else:
        url = request.getfixturevalue("s3_bucket_url") + "/blobs"
        blob_store = BlobStore.open(url, s3_endpoint_url=request.getfixturevalue("s3_server"))
    blob_store.init()
    return blob_store


@pytest.fixture
def corrupt(store: BlobStore) -> Callable[[Digest, bytes], None]:
    """Overwrite a stored object's bytes behind the store's back (bit rot, tampering)."""

    def overwrite(digest: Digest, data: bytes) -> None:
        backend = store._backend
        path = backend.local_path(digest)
        if path is not None:
            path.chmod(0o644)
            path.write_bytes(data)
        else:
            backend.fs.pipe_file(backend._key(digest), data)  # type: ignore[attr-defined]

    return overwrite
