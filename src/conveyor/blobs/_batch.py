"""Batched durability for the local backend: one filesystem flush instead of an fsync per object.

Outside a batch, a local put fsyncs the object and its fan-out folder before returning.
Inside ``BlobStore.batch()``, puts still write a temp file and rename it into place (so a
crash, SIGKILL included, never leaves a partial object visible: that is the rename's job),
but skip the fsyncs; when the batch exits, ONE ``syncfs(2)`` on the store's root makes
everything durable before the ``with`` block returns.

Why syncfs covers the renames too: Linux's ``sync_filesystem`` writes back every dirty
inode of the filesystem, directories included, then calls the filesystem's ``sync_fs``
with ``wait=1``, which commits the journal on ext4 (jbd2), forces the log on XFS and
commits the transaction on btrfs. A rename is metadata in that journal, so no separate
directory fsync is needed. Since Linux 5.8, syncfs also reports writeback errors that
happened on the filesystem since the fd was opened (earlier kernels returned 0).

Where ``syncfs`` is missing from libc, Linux's ``sync(2)`` (which waits for completion
there) is used instead. On other systems POSIX lets ``sync`` return before the writes are
done, so there a batch is a no-op and every put keeps its own fsyncs.

The batch lives in a context variable: code inside the ``with`` block joins it, other
threads do not (their puts stay individually durable) unless they run in a copy of the
block's context (``contextvars.copy_context().run``). A put that starts after its batch
has exited falls back to per-object fsync; a batch waits for puts in flight before flushing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from ._backend import storage_errors

__all__ = ["Batch", "batch", "current_batch", "flush_filesystem"]

# Innermost last. A tuple (immutable) so copied contexts cannot disturb each other.
_OPEN: ContextVar[tuple[Batch, ...]] = ContextVar("conveyor_blob_batches", default=())


class Batch:
    """One open batch on a store root: counts the puts it must flush for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.puts = 0
        self._open = True
        self._in_flight = 0
        self._idle = threading.Condition()

    def join(self) -> bool:
        """Register a put; False once the batch has closed (the put must fsync itself)."""
        with self._idle:
            if not self._open:
                return False
            self._in_flight += 1
            return True

    def leave(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self.puts += 1
            self._idle.notify_all()

    def close(self) -> None:
        """Refuse new puts and wait for those in flight, so the flush covers them all."""
        with self._idle:
            self._open = False
            self._idle.wait_for(lambda: self._in_flight == 0)


def supported() -> bool:
    """Whether a batch can defer durability here (see the module docstring)."""
    return sys.platform.startswith("linux")


def current_batch(root: Path) -> Batch | None:
    """The innermost batch open on ``root`` in this context, if any."""
    for open_batch in reversed(_OPEN.get()):
        if open_batch.root == root:
            return open_batch
    return None


@contextlib.contextmanager
def batch(root: Path) -> Iterator[Batch | None]:
    """Defer the fsyncs of puts under ``root`` to one flush when the block exits.

    Each batch flushes at its own exit, nested ones too: whatever a ``with`` block wrote is
    durable when it returns. The flush also runs when the block raises, because the objects
    it renamed are already visible and may be referenced.
    """
    if not supported():
        yield None
        return
    this = Batch(root)
    token = _OPEN.set((*_OPEN.get(), this))
    try:
        yield this
    finally:
        _OPEN.reset(token)
        this.close()
        if this.puts:
            flush_filesystem(root)


@cache
def _syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):  # no libc symbol (very old glibc, odd platforms)
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def flush_filesystem(root: Path) -> None:
    """Make every write to the filesystem holding ``root`` durable (syncfs, else sync).

    Example::

        >>> flush_filesystem(Path(".conveyor/blobs"))  # doctest: +SKIP
    """
    syncfs = _syncfs()
    if syncfs is None:
        os.sync()
        return
    with storage_errors(f"flush the filesystem holding {root}"):
        fd = os.open(root, os.O_RDONLY)
        try:
            if syncfs(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"syncfs: {os.strerror(err)}", str(root))
        finally:
            os.close(fd)
