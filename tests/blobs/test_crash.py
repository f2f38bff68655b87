"""A writer killed with SIGKILL mid-write must leave no visible partial object."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conveyor.blobs import BlobStore

_SRC = str(Path(__file__).resolve().parents[2] / "src")

# Endless slow stream: the writer is guaranteed to be mid-write when it dies.
_WRITER = textwrap.dedent(
    """
    import io, sys, time
    from conveyor.blobs import BlobStore

    class Slow(io.RawIOBase):
        def readable(self): return True
        def readinto(self, buf):
            time.sleep(0.01)
            buf[: len(buf)] = b"x" * len(buf)
            return len(buf)

    store = BlobStore.open(sys.argv[1])
    store.put_bytes(b"complete before the crash")
    print("writing", flush=True)
    store.put_stream(Slow())
    """
)


# The same, but everything happens inside a batch: the objects finished before the kill
# were renamed without fsync (the flush never ran), the last one is mid-write.
_BATCH_WRITER = _WRITER.replace(
    """store.put_bytes(b"complete before the crash")
print("writing", flush=True)
store.put_stream(Slow())""",
    """with store.batch():
    for i in range(50):
        store.put_bytes(b"batched %d" % i)
    print("writing", flush=True)
    store.put_stream(Slow())""",
)


def _kill_mid_write(store_root: Path, writer: str) -> None:
    """Run ``writer`` and SIGKILL it once its temp file holds more than 8 MiB."""
    env = {**os.environ, "PYTHONPATH": _SRC}
    proc = subprocess.Popen([sys.executable, "-c", writer, str(store_root)], env=env, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"writing\n"
        tmp_dir = store_root / ".tmp"
        deadline = time.monotonic() + 30
        # Wait until the temp file has real bytes in it: the kill lands mid-write.
        while not any(p.stat().st_size > 8 * 1024 * 1024 for p in tmp_dir.iterdir()):
            assert time.monotonic() < deadline, "writer never started writing"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_sigkill_mid_write_leaves_no_partial_object(tmp_path: Path) -> None:
    store = BlobStore.open(tmp_path / "store")
    store.init()
    _kill_mid_write(tmp_path / "store", _WRITER)
    digests = list(store.iter_digests())
    assert len(digests) == 1  # only the object finished before the crash
    assert store.read_bytes(digests[0]) == b"complete before the crash"
    assert all(store.verify(d) for d in digests)
    # The abandoned temp file is invisible to readers and removable by housekeeping.
    assert store.clean_tmp(older_than_seconds=0) == 1


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_sigkill_mid_batch_leaves_no_partial_object(tmp_path: Path) -> None:
    assert "store.batch()" in _BATCH_WRITER
    store = BlobStore.open(tmp_path / "store")
    store.init()
    _kill_mid_write(tmp_path / "store", _BATCH_WRITER)
    # The 50 finished objects are whole (a killed process loses no page cache; only a
    # power loss before the flush could), the one being written is not visible at all.
    contents = {store.read_bytes(d) for d in store.iter_digests()}
    assert contents == {b"batched %d" % i for i in range(50)}
    assert store.clean_tmp(older_than_seconds=0) == 1
