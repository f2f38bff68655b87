"""BlobStore.batch(): per-object fsyncs replaced by one flush of the batch's own files at its exit.

Flushes, fdatasyncs and fsyncs are counted through seams that still call the real functions.
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.blobs import BlobStore, _batch

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="counts os.fdatasync, which is Linux's"
)


class Counter:
    """Wraps a real function and counts its calls (thread-safe)."""

    def __init__(self, real: Callable[..., object]) -> None:
        self.real, self.calls, self._lock = real, 0, threading.Lock()
        self.args: list[tuple[object, ...]] = []

    def __call__(self, *args: object) -> object:
        with self._lock:
            self.calls += 1
            self.args.append(args)
        return self.real(*args)


@pytest.fixture
def local(tmp_path: Path) -> BlobStore:
    store = BlobStore.open(tmp_path / "store")
    store.init()
    return store


@pytest.fixture
def flushes(monkeypatch: pytest.MonkeyPatch) -> Counter:
    counter = Counter(_batch.flush_files)
    monkeypatch.setattr(_batch, "flush_files", counter)
    return counter


@pytest.fixture
def datasyncs(monkeypatch: pytest.MonkeyPatch) -> Counter:
    counter = Counter(os.fdatasync)
    monkeypatch.setattr(os, "fdatasync", counter)
    return counter


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> Counter:
    counter = Counter(os.fsync)
    monkeypatch.setattr(os, "fsync", counter)
    return counter


def _tree(root: Path, count: int) -> Path:
    for i in range(count):
        folder = root / f"d{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.txt").write_bytes(f"file {i}".encode())
    return root


def test_put_tree_flushes_once_and_fsyncs_no_object(
    local: BlobStore, tmp_path: Path, flushes: Counter, fsyncs: Counter, datasyncs: Counter
) -> None:
    tree = local.put_tree(_tree(tmp_path / "src", 20))
    assert flushes.calls == 1
    manifest = local.read_manifest(tree.digest)
    objects = {local._backend.local_path(e.digest) for e in manifest.entries} | {local._backend.local_path(tree.digest)}
    assert datasyncs.calls == 21  # each file's object and the manifest, once
    assert fsyncs.calls == len({p.parent for p in objects if p is not None})  # each fan-out folder once
    assert len(manifest.entries) == 20
    assert all(local.verify(e.digest) for e in manifest.entries)


def test_batch_flushes_only_its_own_files_never_the_filesystem(
    local: BlobStore, tmp_path: Path, flushes: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11.6: a whole-filesystem sync (syncfs/sync) waits for every process's writes."""
    def forbidden(*args: object) -> None:
        raise AssertionError("a batch must not sync the whole filesystem")

    monkeypatch.setattr(os, "sync", forbidden)
    monkeypatch.setattr("ctypes.CDLL", forbidden)  # the way syncfs was reached
    with local.batch():
        a = local.put_bytes(b"a")
        b = local.put_bytes(b"b")
    (root, files), = flushes.args
    assert root == local._backend.root
    assert sorted(map(str, files)) == sorted(str(local._backend.local_path(d)) for d in (a.digest, b.digest))


def test_outside_a_batch_every_put_fsyncs_object_and_folder(
    local: BlobStore, flushes: Counter, fsyncs: Counter
) -> None:
    local.put_bytes(b"one")
    local.put_bytes(b"two")
    assert flushes.calls == 0
    assert fsyncs.calls == 4  # each object, then its fan-out folder


def test_public_batch_groups_puts(
    local: BlobStore, tmp_path: Path, flushes: Counter, fsyncs: Counter
) -> None:
    (tmp_path / "a.csv").write_bytes(b"a,b\n1,2\n")
    with local.batch():
        a = local.put_file(tmp_path / "a.csv")
        b = local.put_bytes(b"b")
        again = local.put_bytes(b"b")  # dedup inside the batch
        assert local.read_bytes(a.digest) == b"a,b\n1,2\n"  # visible before the flush
        assert flushes.calls == 0
    assert flushes.calls == 1
    assert fsyncs.calls == len({local._backend.local_path(d).parent for d in (a.digest, b.digest)})  # folders only
    assert again == b
    assert local.read_bytes(b.digest) == b"b"


def test_empty_batch_does_not_flush(local: BlobStore, flushes: Counter) -> None:
    with local.batch():
        pass
    assert flushes.calls == 0


def test_nested_batches_each_flush_at_their_exit(
    local: BlobStore, flushes: Counter
) -> None:
    with local.batch():
        local.put_bytes(b"outer")
        with local.batch():
            local.put_bytes(b"inner")
        assert flushes.calls == 1
    assert flushes.calls == 2


def test_batch_flushes_even_when_the_block_raises(
    local: BlobStore, flushes: Counter
) -> None:
    with pytest.raises(RuntimeError), local.batch():
        local.put_bytes(b"kept")
        raise RuntimeError("boom")
    assert flushes.calls == 1


def test_only_threads_given_the_context_join(
    local: BlobStore, flushes: Counter, fsyncs: Counter
) -> None:
    with local.batch():
        joined = threading.Thread(
            target=contextvars.copy_context().run, args=(local.put_bytes, b"joined")
        )
        joined.start()
        joined.join()
        assert fsyncs.calls == 0
        alone = threading.Thread(
            target=local.put_bytes, args=(b"alone",)
        )  # a fresh context
        alone.start()
        alone.join()
        assert fsyncs.calls == 2  # outside the batch: durable by itself
    assert flushes.calls == 1


def test_put_after_its_batch_closed_is_durable_by_itself(
    local: BlobStore, fsyncs: Counter
) -> None:
    with local.batch():
        late = contextvars.copy_context()  # still names the batch after it closes
    late.run(local.put_bytes, b"late")
    assert fsyncs.calls == 2


def test_short_object_left_by_power_loss_is_replaced(local: BlobStore) -> None:
    blob = local.put_bytes(b"the full content")
    path = local._backend.local_path(blob.digest)
    assert path is not None
    path.chmod(0o644)
    path.write_bytes(b"")  # what a power loss mid-batch can leave under the name
    assert local.put_bytes(b"the full content") == blob
    assert local.read_bytes(blob.digest) == b"the full content"


def test_real_flush_of_many_files_runs(local: BlobStore, datasyncs: Counter) -> None:
    with local.batch():
        blobs = [local.put_bytes(f"object {i}".encode()) for i in range(100)]
    assert datasyncs.calls == 100  # from the bounded pool
    assert all(local.verify(b.digest) for b in blobs)


def test_batch_on_every_backend(store: BlobStore) -> None:
    with store.batch():
        blob = store.put_bytes(b"batched")
    assert store.read_bytes(blob.digest) == b"batched"
