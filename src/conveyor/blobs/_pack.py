"""Packs: many small files stored as one object, so a remote store sees few requests.

A pack is the plain concatenation of file contents, stored as an ordinary content-addressed
object (its name is the digest of those bytes, like any object's). It has no header and no
index: the manifest of the folder says, per file, its own digest, the pack's digest, the
offset and the size (manifest version 2, see ``_manifest.py``). So a pack is only ever read
through a manifest, every file cut out of it is checked against its own digest, and ``gc``
and ``doctor`` see packs as objects referenced by manifests.

When: a folder stored with packing on (``BlobStore.put_entries(pack=True)``; the default,
``pack=None``, packs on remote stores only) packs the files of at most ``PACK_FILE_MAX``
bytes that are not stored yet, when there are at least ``PACK_MIN_FILES`` of them; fewer go
up as loose objects, as do bigger files. Packs are filled up to ``PACK_TARGET`` bytes, in
path order, so files of one sub-folder tend to share packs.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final

from conveyor.errors import CorruptObject, StorageError

from ._backend import Backend, map_bounded
from ._digest import Blob, Digest, hash_bytes, hash_stream
from ._manifest import ManifestEntry

__all__ = [
    "PACK_FILE_MAX", "PACK_MIN_FILES", "PACK_TARGET", "build_pack", "fetch_pack", "plan_packs", "put_packed", "split_pack",
]

#: Files up to this size may go into a pack.
PACK_FILE_MAX: Final = 256 * 1024
#: Fewer new small files than this are stored as loose objects (a pack would not pay).
PACK_MIN_FILES: Final = 16
#: A pack is closed once it holds this many bytes (≤ one S3 PutObject, fetched whole).
PACK_TARGET: Final = 4 * 1024 * 1024
#: A pack read whole in one request when the bytes needed end before this offset.
WHOLE_PACK_READ: Final = 16 * 1024 * 1024


def plan_packs(items: Sequence[tuple[Digest, int, Path]]) -> list[list[tuple[Digest, int, Path]]]:
    """Split ``(digest, size, path)`` items (one per distinct digest) into packs of about
    ``PACK_TARGET`` bytes, in the given order."""
    packs: list[list[tuple[Digest, int, Path]]] = []
    current: list[tuple[Digest, int, Path]] = []
    filled = 0
    for item in items:
        current.append(item)
        filled += item[1]
        if filled >= PACK_TARGET:
            packs.append(current)
            current, filled = [], 0
    if current:
        packs.append(current)
    return packs


def build_pack(items: Sequence[tuple[Digest, int, Path]]) -> tuple[bytes, list[int]]:
    """The pack's bytes and each item's offset; every file is re-read and re-checked, so a
    file changed since it was hashed is refused instead of stored under a wrong name."""
    parts: list[bytes] = []
    offsets: list[int] = []
    offset = 0
    for digest, size, path in items:
        with open(path, "rb", buffering=0) as stream:
            data = stream.read(size + 1)
        if len(data) != size or hash_bytes(data) != digest:
            raise StorageError(
                f"{path} changed while being stored (expected {digest}); nothing was written for it"
            )
        parts.append(data)
        offsets.append(offset)
        offset += size
    return b"".join(parts), offsets


def split_pack(
    pack: Digest, data: bytes, base: int, wanted: Sequence[tuple[str, Digest, int, int]], *, verify: bool
) -> Iterator[tuple[int, bytes]]:
    """Cut ``(path, digest, offset, size)`` out of ``data`` (the pack's bytes from offset
    ``base``): yields ``(index in wanted, bytes)``, each checked against its digest."""
    for index, (path, digest, offset, size) in enumerate(wanted):
        start = offset - base
        chunk = data[start : start + size]
        if start < 0 or len(chunk) != size:
            raise CorruptObject(
                f"pack {pack} is truncated: {path!r} needs bytes {offset}..{offset + size}",
                hint="run `conveyor doctor`; add the folder again to store the file anew",
            )
        if verify and (actual := hash_bytes(chunk)) != digest:
            raise CorruptObject(
                f"file {path!r} in pack {pack} is corrupt: its bytes hash to {actual}, not {digest}",
                hint="run `conveyor doctor`; add the folder again to store the file anew",
            )
        yield index, chunk


def fetch_pack(
    backend: Backend, pack: Digest, wanted: Sequence[tuple[str, Digest, int, int]], *, verify: bool
) -> Iterator[tuple[int, bytes]]:
    """The files ``(path, digest, offset, size)`` of one pack: the pack is fetched whole in
    one request (packs are a few MiB) unless the bytes needed end past ``WHOLE_PACK_READ``;
    then only the span holding them is read."""
    if not wanted:
        return
    start = min(w[2] for w in wanted)
    end = max(w[2] + w[3] for w in wanted)
    if end <= WHOLE_PACK_READ:
        data, base = backend.read_all(pack), 0
    else:
        with backend.open_read(pack) as stream, backend.errors("read", pack):
            stream.seek(start)
            data, base = stream.read(end - start), start
    yield from split_pack(pack, data, base, wanted, verify=verify)


def put_packed(
    backend: Backend,
    files: Sequence[tuple[str, Path]],
    known: Iterable[ManifestEntry],
    *,
    workers: int | None,
    progress: Callable[[int, int], None] | None,
) -> list[ManifestEntry]:
    """Store ``(relative path, file)`` pairs, packing the new small files; the entries come
    back in the order of ``files``.

    Already stored, so not uploaded again: loose objects (one batched existence check) and
    files that ``known`` (e.g. the previous version's manifest) places in a pack that still
    exists. Each pack is uploaded once, concurrently (``backend.concurrency``).
    """
    blobs: list[Blob] = []
    for _, path in files:
        with backend.errors(f"read {path}"), open(path, "rb", buffering=0) as stream:
            blobs.append(hash_stream(stream))
    located: dict[Digest, tuple[Digest, int, int]] = {}
    for entry in known:
        if entry.pack is not None:
            located.setdefault(entry.digest, (entry.pack, entry.offset, entry.size))
    digests = {b.digest for b in blobs}
    packs_known = {located[d][0] for d in digests if d in located}
    present = backend.exists_many(digests | packs_known)
    where: dict[Digest, tuple[Digest, int] | None] = {}
    for blob in blobs:
        if blob.digest in where:
            continue
        loc = located.get(blob.digest)
        if blob.digest in present:
            where[blob.digest] = None
        elif loc is not None and loc[0] in present and loc[2] == blob.size:
            where[blob.digest] = (loc[0], loc[1])
    small: dict[Digest, tuple[Digest, int, Path]] = {}
    loose: dict[Digest, Path] = {}
    for (_, path), blob in zip(files, blobs, strict=True):
        if blob.digest in where or blob.digest in small or blob.digest in loose:
            continue
        if blob.size <= PACK_FILE_MAX:
            small[blob.digest] = (blob.digest, blob.size, path)
        else:
            loose[blob.digest] = path
    if len(small) < PACK_MIN_FILES:  # too few to be worth a pack
        loose.update((d, item[2]) for d, item in small.items())
        small.clear()
    total, done, lock = len(files), len(files) - len(small) - len(loose), threading.Lock()
    if loose:
        stored = backend.put_files(list(loose.values()), workers=workers)
        for digest, blob in zip(loose, stored, strict=True):
            if blob.digest != digest:
                raise StorageError(f"{loose[digest]} changed while being stored (expected {digest})")
            where[digest] = None
        done += len(loose)
        if progress is not None:
            progress(done, total)

    def upload(items: list[tuple[Digest, int, Path]]) -> None:
        nonlocal done
        data, offsets = build_pack(items)
        pack, _ = backend.put_stream(io.BytesIO(data))
        with lock:
            for (digest, _, _), offset in zip(items, offsets, strict=True):
                where[digest] = (pack, offset)
            done += len(items)
            if progress is not None:
                progress(done, total)

    map_bounded(upload, plan_packs(list(small.values())), backend.concurrency)
    out: list[ManifestEntry] = []
    for (rel, _), blob in zip(files, blobs, strict=True):
        loc = where[blob.digest]
        if loc is None:
            out.append(ManifestEntry(rel, blob.digest, blob.size))
        else:
            out.append(ManifestEntry(rel, blob.digest, blob.size, loc[0], loc[1]))
    return out
