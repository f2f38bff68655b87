from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.blobs import Blob, BlobStore, DestinationExists, Digest
from conveyor.blobs._digest import hash_bytes
from conveyor.errors import CorruptObject, InvalidInput, NotFound

MISSING = Digest("blake3", "00" * 32)
_SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_bytes_round_trip(store: BlobStore) -> None:
    blob = store.put_bytes(b"hello world")
    assert blob == Blob(hash_bytes(b"hello world"), 11)
    assert store.read_bytes(blob.digest) == b"hello world"
    assert store.exists(blob.digest) and store.size(blob.digest) == 11
    with store.open_read(blob.digest) as stream:
        assert stream.read() == b"hello world"
    assert store.verify(blob.digest)


def test_empty_object(store: BlobStore) -> None:
    blob = store.put_bytes(b"")
    assert blob.size == 0 and store.read_bytes(blob.digest) == b""


def test_file_and_stream_round_trip(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    from_file = store.put_file(src)
    from_stream = store.put_stream(io.BytesIO(data))
    assert from_file == from_stream == Blob(hash_bytes(data), len(data))
    dest = store.get_file(from_file.digest, tmp_path / "dest.bin")
    assert dest.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_identical_content_is_stored_once(store: BlobStore, tmp_path: Path) -> None:
    first = store.put_bytes(b"same")
    (tmp_path / "f").write_bytes(b"same")
    assert store.put_file(tmp_path / "f") == first
    assert store.put_stream(io.BytesIO(b"same")) == first
    assert list(store.iter_digests()) == [first.digest]


def test_iter_digests_lists_every_object(store: BlobStore) -> None:
    blobs = {store.put_bytes(str(i).encode()).digest for i in range(5)}
    assert set(store.iter_digests()) == blobs


def test_delete_and_mtime(store: BlobStore) -> None:
    blob = store.put_bytes(b"gc me")
    assert abs(store.stat_mtime(blob.digest) - time.time()) < 120
    assert store.delete(blob.digest) is True
    assert store.delete(blob.digest) is False
    assert not store.exists(blob.digest)
    assert list(store.iter_digests()) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.read_bytes(MISSING),
        lambda s: s.open_read(MISSING),
        lambda s: s.size(MISSING),
        lambda s: s.verify(MISSING),
        lambda s: s.stat_mtime(MISSING),
        lambda s: s.read_manifest(MISSING),
    ],
)
def test_missing_object_is_not_found(store: BlobStore, call: Callable[[BlobStore], object]) -> None:
    with pytest.raises(NotFound) as info:
        call(store)
    assert info.value.kind == "object" and info.value.name == str(MISSING)
    assert isinstance(info.value, KeyError)


def test_get_file_of_missing_object(store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.get_file(MISSING, tmp_path / "x")
    assert list(tmp_path.iterdir()) == [] or not (tmp_path / "x").exists()


def test_corruption_is_detected(
    store: BlobStore, corrupt: Callable[[Digest, bytes], None], tmp_path: Path
) -> None:
    blob = store.put_bytes(b"precious weights")
    corrupt(blob.digest, b"precious weighs!")
    assert store.verify(blob.digest) is False
    with pytest.raises(CorruptObject, match=str(blob.digest)):
        store.read_bytes(blob.digest)
    with pytest.raises(CorruptObject, match=str(blob.digest)):
        store.get_file(blob.digest, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
    assert store.read_bytes(blob.digest, verify=False) == b"precious weighs!"


def test_get_file_replaces_atomically_only_with_force_and_can_link(store: BlobStore, tmp_path: Path) -> None:
    blob = store.put_bytes(b"v2")
    dest = tmp_path / "model.bin"
    dest.write_bytes(b"v1")
    with pytest.raises(DestinationExists):
        store.get_file(blob.digest, dest)
    assert dest.read_bytes() == b"v1"
    store.get_file(blob.digest, dest, force=True)
    assert dest.read_bytes() == b"v2"
    store.get_file(blob.digest, dest)  # the same bytes already there: nothing to do
    assert dest.read_bytes() == b"v2"
    linked = store.get_file(blob.digest, tmp_path / "linked.bin", link=True)
    assert linked.read_bytes() == b"v2"
    source = store._backend.local_path(blob.digest)
    if source is not None:  # local: a hard link to the object, which is read-only
        assert linked.stat().st_ino == source.stat().st_ino
        assert not os.access(source, os.W_OK) or os.geteuid() == 0
    # a plain copy is independent of the store
    assert dest.stat().st_ino != linked.stat().st_ino


def test_put_file_of_missing_source(store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.put_file(tmp_path / "nope")


# Runs in a child process: an in-process moto server would count its own copy of the
# uploaded bytes in tracemalloc's peak.
_FLAT_MEMORY_CHILD = """
import io, os, sys, tracemalloc
from conveyor.blobs import BlobStore

url, endpoint, workdir, size = sys.argv[1], sys.argv[2] or None, sys.argv[3], int(sys.argv[4])
store = BlobStore.open(url, s3_endpoint_url=endpoint)
block = os.urandom(1024 * 1024)
src = os.path.join(workdir, "big.bin")
with open(src, "wb") as f:
    for _ in range(size // len(block)):
        f.write(block)

class Generated(io.RawIOBase):  # non-seekable, fed by a generator (a pipe, a socket)
    def __init__(self):
        self.left = size
    def readable(self):
        return True
    def readinto(self, buf):
        n = min(len(buf), len(block), self.left)
        buf[:n] = block[:n]
        self.left -= n
        return n

tracemalloc.start()
blob = store.put_file(src)
assert store.put_stream(Generated()).size == size
assert store.verify(blob.digest)
store.get_file(blob.digest, os.path.join(workdir, "back.bin"))
print(tracemalloc.get_traced_memory()[1])
assert blob.size == size == os.path.getsize(os.path.join(workdir, "back.bin"))
"""


def test_large_inputs_stream_in_flat_memory(
    store: BlobStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    on_s3 = repr(store).startswith("BlobStore('s3://")
    # s3fs/botocore keep a constant ~40 MiB in flight, so prove flatness on S3 with an
    # input several times that size.
    size = (192 if on_s3 else 64) * 1024 * 1024
    endpoint = request.getfixturevalue("s3_server") if on_s3 else ""
    url = repr(store).removeprefix("BlobStore('").removesuffix("')")
    out = subprocess.run(
        [sys.executable, "-c", _FLAT_MEMORY_CHILD, url, endpoint, str(tmp_path), str(size)],
        env={**os.environ, "PYTHONPATH": _SRC},
        capture_output=True,
        check=True,
        timeout=300,
    )
    peak = int(out.stdout)
    assert peak < size // 2, f"peak {peak / 2**20:.1f} MiB for a {size >> 20} MiB input"


def test_clean_tmp_removes_only_old_temp_files(tmp_path: Path) -> None:
    store = BlobStore.open(tmp_path / "store")
    store.init()
    old, new = tmp_path / "store/.tmp/put-old", tmp_path / "store/.tmp/put-new"
    old.write_bytes(b"abandoned")
    new.write_bytes(b"in flight")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert store.clean_tmp(older_than_seconds=3600) == 1
    assert not old.exists() and new.exists()


def test_constructors_have_no_side_effects(tmp_path: Path) -> None:
    BlobStore.open(tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(InvalidInput, match="gopher://x"):
        BlobStore.open("gopher://x")


def test_concurrent_put_files_of_the_same_content(store: BlobStore, tmp_path: Path) -> None:
    """Two writers storing overlapping files at once (threads here, as two CLI processes would):
    both succeed, every object is stored once and verifies."""
    import threading

    files = []
    for i in range(40):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(f"content {i % 25}".encode() * (i + 1))
        files.append(path)
    results: list[list[Blob]] = []
    errors: list[BaseException] = []

    def writer(order: list[Path]) -> None:
        try:
            results.append(store.put_files(order))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(files,)), threading.Thread(target=writer, args=(files[::-1],))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results[0] == results[1][::-1] or results[1] == results[0][::-1]
    assert all(store.verify(blob.digest) for blob in results[0])
    assert store.exists_many({b.digest for b in results[0]}) == {b.digest for b in results[0]}
