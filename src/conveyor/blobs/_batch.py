"""Batched durability for the local backend: the batch's own files flushed together at its exit.

Outside a batch, a local put fsyncs the object and its fan-out folder before returning.
Inside ``BlobStore.batch()``, puts still write a temp file and rename it into place (so a
crash, SIGKILL included, never leaves a partial object visible: that is the rename's job),
but skip the fsyncs and record the object's path. When the batch exits, the recorded
objects are ``fdatasync``-ed from a bounded thread pool (the journal commits of concurrent
syncs are shared, so N files cost far fewer than N commits), then each fan-out folder that
received a new name is fsynced once, so the renames are durable too. Only conveyor's own
files are flushed: other processes' dirty pages are left alone (a ``syncfs(2)`` of the
whole filesystem, the previous design, waited for every writer on the disk).

A power loss before the batch's exit can leave an object renamed but not written back;
ext4, XFS and btrfs then show it shorter than its content (delayed allocation), and the
next put of the same content sees the wrong size and replaces it (``LocalBackend._reuse``).

Where ``os.fdatasync`` is missing (macOS) ``os.fsync`` is used. On Windows a batch is a
no-op and every put keeps its own fsyncs.

The batch lives in a context variable: code inside the ``with`` block joins it, other
threads do not (their puts stay individually durable) unless they run in a copy of the
block's context (``contextvars.copy_context().run``). A put that starts after its batch
has exited falls back to per-object fsync; a batch waits for puts in flight before flushing.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from pathlib import Path
from typing import Final

from ._backend import storage_errors

__all__ = ["Batch", "batch", "current_batch", "flush_files"]

# Innermost last. A tuple (immutable) so copied contexts cannot disturb each other.
_OPEN: ContextVar[tuple[Batch, ...]] = ContextVar("conveyor_blob_batches", default=())

#: Threads that fdatasync a batch's files: enough to keep a disk queue busy and share
#: journal commits, bounded so a 100,000-file batch does not start 100,000 syscalls at once.
SYNC_WORKERS: Final = 128


class Batch:
    """One open batch on a store root: the objects it must make durable at its exit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.puts = 0
        self.files: list[Path] = []
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

    def leave(self, written: Path | None = None) -> None:
        """A put finished; ``written`` is the object it stored (or reused), to flush at exit."""
        with self._idle:
            self._in_flight -= 1
            self.puts += 1
            if written is not None:
                self.files.append(written)
            self._idle.notify_all()

    def close(self) -> None:
        """Refuse new puts and wait for those in flight, so the flush covers them all."""
        with self._idle:
            self._open = False
            self._idle.wait_for(lambda: self._in_flight == 0)


def supported() -> bool:
    """Whether a batch can defer durability here (see the module docstring)."""
    return os.name == "posix"


def current_batch(root: Path) -> Batch | None:
    """The innermost batch open on ``root`` in this context, if any."""
    for open_batch in reversed(_OPEN.get()):
        if open_batch.root == root:
            return open_batch
    return None


@contextlib.contextmanager
def batch(root: Path) -> Iterator[Batch | None]:
    """Defer the fsyncs of puts under ``root`` to one flush of their files when the block exits.

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
        if this.files:
            flush_files(root, this.files)


def _datasync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        getattr(os, "fdatasync", os.fsync)(fd)
    finally:
        os.close(fd)


def flush_files(root: Path, files: Iterable[Path]) -> None:
    """Make ``files`` (objects under ``root``) and their names durable: fdatasync each, then
    fsync each folder holding one.

    Example::

        >>> flush_files(Path(".conveyor/blobs"), [Path(".conveyor/blobs/ab/cdef…")])  # doctest: +SKIP
    """
    unique = list(dict.fromkeys(files))
    folders = list(dict.fromkeys(p.parent for p in unique))
    with storage_errors(f"flush objects under {root}"):
        if len(unique) == 1:
            _datasync(unique[0])
        elif unique:
            with ThreadPoolExecutor(max_workers=min(SYNC_WORKERS, len(unique))) as pool:
                list(pool.map(_datasync, unique))
        for folder in folders:
            _datasync_dir(folder)


def _datasync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
