"""Checking objects out of a ``BlobStore``: one file (``get_file``) or a whole tree
(``get_tree``), written atomically, verified, nothing overwritten unless ``force`` and
nothing written outside the destination, into ``.git`` or onto a device."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

from conveyor.errors import CorruptObject, NotFound, UnsafePath

from ._backend import Backend, map_bounded, storage_errors
from ._checkout import DestinationExists, check_destination, place, refuse_git
from ._digest import Digest, hash_bytes, hash_stream
from ._manifest import Manifest, ManifestEntry
from ._materialize import copy_to, write_bytes_to
from ._pack import fetch_pack
from ._safepath import inside_resolver

#: Objects up to this size are fetched whole in one request when checking out a tree.
_WHOLE_READ: Final = 1024 * 1024

Progress = Callable[[int, int], None]


def _corrupt(digest: Digest, actual: Digest) -> CorruptObject:
    return CorruptObject(
        f"object {digest} is corrupt: its content hashes to {actual}",
        hint="delete it and store the original again",
    )


class Checkout:
    """``BlobStore``'s checkout methods (a mixin: it needs the store's backend and readers)."""

    _backend: Backend

    if TYPE_CHECKING:
        def open_read(self, digest: Digest) -> BinaryIO: ...

        def read_manifest(self, digest: Digest) -> Manifest: ...

        def verify(self, digest: Digest, *, size: int | None = None) -> bool: ...

    def get_file(
        self,
        digest: Digest,
        dest: str | os.PathLike[str],
        *,
        verify: bool = True,
        link: bool = False,
        force: bool = False,
        mode: int = 0o666,
    ) -> Path:
        """Write an object to ``dest`` atomically (temp file, then into place).

        Nothing is overwritten unless ``force``: an existing file with other bytes raises
        ``DestinationExists`` (one with exactly these bytes is left as it is). A destination
        that is not a regular file (a device, a FIFO, a link) or lies in a ``.git`` folder is
        refused even with ``force`` (see ``_checkout.py``). ``mode`` (before the umask) is the
        new file's permission bits.

        ``link=True`` hard-links the stored object instead of copying (local stores, same
        filesystem): fast, but the file *is* the object, so only for read-only consumers
        that never edit it; it falls back to a copy when a link is impossible.

        Example::

            >>> store.get_file(blob.digest, "out/model.onnx")  # doctest: +SKIP
            PosixPath('out/model.onnx')
        """
        target = Path(dest)
        if not check_destination(target, digest, None, force=force):
            return target
        self._write(digest, target, None, verify=verify, link=link, force=force, mode=mode)
        return target

    def _write(
        self, digest: Digest, target: Path, size: int | None, *, verify: bool, link: bool, force: bool, mode: int
    ) -> None:
        source = self._backend.local_path(digest) if link else None
        if source is not None:
            if verify and not self.verify(digest):
                raise _corrupt(digest, hash_stream(self.open_read(digest)).digest)
            if self._try_link(source, target, digest, force=force):
                return
            verify = False  # just checked; the copy below reads the same bytes
        if size is not None and size <= _WHOLE_READ:
            data = self._backend.read_all(digest)  # one request on S3
            if verify and (actual := hash_bytes(data)) != digest:
                raise _corrupt(digest, actual)
            write_bytes_to(data, target, force=force, mode=mode)
            return
        with self.open_read(digest) as stream, self._backend.errors("read", digest):
            actual = copy_to(stream, target, digest, hashing=verify, force=force, mode=mode)
        if actual is not None and actual != digest:
            raise _corrupt(digest, actual)  # copy_to already removed its temp file

    def _try_link(self, source: Path, target: Path, digest: Digest, *, force: bool) -> bool:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            os.link(source, tmp)
        except FileNotFoundError:
            raise NotFound("object", str(digest)) from None
        except OSError:  # other filesystem, or links unsupported: copy instead
            return False
        try:
            place(tmp, target, force=force)
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def get_tree(
        self,
        digest: Digest,
        dest_dir: str | os.PathLike[str],
        *,
        verify: bool = True,
        force: bool = False,
        mode: int = 0o666,
        progress: Progress | None = None,
    ) -> Path:
        """Materialize a stored tree (a manifest digest) into ``dest_dir``.

        Every path is validated, and every destination checked, before anything is written:
        a path that would land outside ``dest_dir`` (including through a symlink already
        there) raises ``UnsafePath``; so does any path in a ``.git`` folder and any existing
        destination that is not a regular file. Existing files with other bytes raise
        ``DestinationExists`` (all of them named) unless ``force``. Files are fetched
        concurrently (``[store] s3_max_concurrency`` on S3) and verified unless ``verify=False``.

        Example::

            >>> store.get_tree(tree.digest, "checkout/")  # doctest: +SKIP
            PosixPath('checkout')
        """
        manifest = self.read_manifest(digest)
        root = Path(dest_dir)
        refuse_git(root)
        if root.is_symlink() or (root.exists() and not root.is_dir()):
            raise UnsafePath(
                f"refusing to check out into {str(root)!r}: it exists and is not a folder",
                field="dest", value=str(root), hint="name a new or existing folder",
            )
        planned: list[tuple[ManifestEntry, Path]] = []
        conflicts: list[Path] = []
        resolve = inside_resolver(root)
        for entry in manifest.entries:
            target = resolve(entry.path)
            try:
                if check_destination(target, entry.digest, entry.size, force=force, resolved=True):
                    planned.append((entry, target))
            except DestinationExists:
                conflicts.append(target)
        if conflicts:
            raise DestinationExists(conflicts)
        with storage_errors(f"create folders under {root}"):
            root.mkdir(parents=True, exist_ok=True)
            for folder in sorted({t.parent for _, t in planned}):
                folder.mkdir(parents=True, exist_ok=True)
        # One task per loose object, one per pack (fetched once, cut into its files).
        tasks: list[list[tuple[ManifestEntry, Path]]] = []
        packs: dict[Digest, list[tuple[ManifestEntry, Path]]] = {}
        for entry, target in planned:
            if entry.pack is None:
                tasks.append([(entry, target)])
            else:
                packs.setdefault(entry.pack, []).append((entry, target))
        tasks.extend(packs.values())
        # Packs are fetched concurrently but cut into files by one thread at a time: writing
        # files is syscalls under the GIL, and several threads doing it only trade the GIL
        # back and forth (measured: ~14 futex calls per file written with 5 writers).
        done, lock, writing = 0, threading.Lock(), threading.Lock()

        def one(task: list[tuple[ManifestEntry, Path]]) -> None:
            nonlocal done
            first = task[0][0]
            if first.pack is None:
                self._write(first.digest, task[0][1], first.size, verify=verify, link=False, force=force, mode=mode)
            else:
                wanted = [(e.path, e.digest, e.offset, e.size) for e, _ in task]
                files = list(fetch_pack(self._backend, first.pack, wanted, verify=verify))
                with writing:
                    for index, data in files:
                        write_bytes_to(data, task[index][1], force=force, mode=mode)
            if progress is not None:
                with lock:
                    before, done = done, done + len(task)
                    if done == len(planned) or done // 64 != before // 64:
                        progress(done, len(planned))

        map_bounded(one, tasks, self._backend.concurrency)
        return root
