"""Storing a file or a folder, re-reading only what the stat cache cannot vouch for.

New or changed files are stored with ``BlobStore.put_entries``: locally by threads when
files are big (BLAKE3 and file I/O release the GIL); on a remote store (S3) after one
batched existence check, the many small ones concatenated into packs (a few requests
instead of one per file; see ``conveyor.blobs._pack``), the others as concurrent requests.
Files the previous version already holds in a pack are not stored again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import blake3

from conveyor.blobs import BlobStore, Digest, Manifest, ManifestEntry
from conveyor.errors import ConveyorError, NotFound, UnsafePath

from conveyor.data._statcache import StatCache, StatKey

__all__ = ["Stored", "store_file", "store_folder"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Stored:
    """The result of storing a path: its digest (a manifest for a folder) and totals."""

    digest: Digest
    size: int
    file_count: int
    hashed: int  # files read because the stat cache had nothing valid


def _key(st: os.stat_result) -> StatKey:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def store_file(blobs: BlobStore, path: Path, cache: StatCache) -> Stored:
    """Store one file (or take its digest from the cache when its stat is unchanged)."""
    full = str(path.absolute())
    try:
        st = os.stat(full)
    except FileNotFoundError:
        raise NotFound("path", str(path), hint="check the path; data add takes a file, a folder or a table") from None
    hit = cache.lookup(full)
    if hit is not None and hit[0] == _key(st):
        digest = Digest.parse(hit[1])
        if blobs.exists(digest):
            return Stored(digest, st.st_size, 1, 0)
    blob = blobs.put_file(full)
    cache.update([(full, _key(st), str(blob.digest))])
    return Stored(blob.digest, blob.size, 1, 1)


def _scan(root: Path) -> list[tuple[str, str, os.stat_result]]:
    """(relative path, absolute path, stat) of every file under ``root``; symlinks refused."""
    out: list[tuple[str, str, os.stat_result]] = []
    stack = [(str(root), "")]
    while stack:
        folder, rel_base = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = f"{rel_base}{entry.name}"
                if entry.is_symlink():
                    raise UnsafePath(
                        f"{rel!r} in {str(root)!r} is a symbolic link", field="path", value=rel,
                        hint="copy the target into the folder, or remove the link",
                    )
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    out.append((rel, entry.path, entry.stat(follow_symlinks=False)))
    return out


def _fingerprint(files: list[tuple[str, str, os.stat_result]]) -> str:
    """A hash of every file's relative path and stat key: equal means "nothing changed"."""
    hasher = blake3.blake3()
    for rel, _, st in sorted(files, key=lambda f: f[0]):
        hasher.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode("utf-8", "surrogateescape"))
    return hasher.hexdigest()


def _complete(blobs: BlobStore, digest: Digest, trusted: str | None) -> bool:
    """Whether a stored manifest can stand for its files without storing them again.

    A referenced manifest (``trusted``: the data set's latest version) keeps its entries
    alive through gc. Any other one may be an orphan whose entries a gc pass is deleting,
    so each entry is checked (in one batched query: listings on S3).
    """
    if not blobs.exists(digest):
        return False
    if str(digest) == trusted:
        return True
    try:
        manifest = blobs.read_manifest(digest)
    except NotFound:  # collected meanwhile, or (remote mode) a manifest no version names yet
        return False
    return not blobs.missing_entries(manifest.entries)


def _known(blobs: BlobStore, trusted: str | None) -> dict[Digest, ManifestEntry]:
    """Packed entries of the trusted manifest (the previous version), by file digest: where
    files it already holds in packs can be found without storing them again."""
    if trusted is None:
        return {}
    try:
        manifest = blobs.read_manifest(Digest.parse(trusted))
    except ConveyorError:  # the latest version is a file, or its manifest is gone
        return {}
    return {e.digest: e for e in manifest.entries if e.pack is not None}


def store_folder(
    blobs: BlobStore,
    root: Path,
    cache: StatCache,
    *,
    workers: int,
    progress: Progress | None = None,
    trusted: str | None = None,
) -> Stored:
    """Store every file under ``root`` that the cache does not vouch for, then the manifest.

    ``trusted`` is the digest of a manifest known to be referenced (the latest version).
    """
    if not root.is_dir():
        raise NotFound("folder", str(root))
    base = str(root.absolute())
    files = _scan(Path(base))
    fingerprint = _fingerprint(files)
    known_folder = cache.lookup_folder(base, fingerprint)
    if known_folder is not None:
        digest = Digest.parse(known_folder[0])
        if _complete(blobs, digest, trusted):
            return Stored(digest, known_folder[1], known_folder[2], 0)
    cached = cache.lookup_tree(base)
    in_packs = _known(blobs, trusted) if blobs.packs_by_default else {}
    entries: list[ManifestEntry] = []
    todo: list[tuple[str, str, os.stat_result]] = []
    for rel, full, st in files:
        hit = cached.get(full)
        if hit is not None and hit[0] == _key(st):
            digest = Digest.parse(hit[1])
            where = in_packs.get(digest)
            if where is not None and where.size == st.st_size:
                entries.append(ManifestEntry(rel, digest, st.st_size, where.pack, where.offset))
            else:
                entries.append(ManifestEntry(rel, digest, st.st_size))
        else:
            todo.append((rel, full, st))
    if not todo:
        # Nothing to read: if this manifest is already stored and complete, that is the answer.
        manifest = Manifest.of(entries)
        data = manifest.to_bytes()
        known = Digest("blake3", blake3.blake3(data).hexdigest())
        if _complete(blobs, known, trusted):
            cache.update_folder(base, fingerprint, str(known), manifest.total_size, len(entries))
            return Stored(known, manifest.total_size, len(entries), 0)
    # Objects (or packs) named by the cache may have been collected since; store those
    # files again.
    missing = {e.path for e in blobs.missing_entries(entries)}
    if missing:
        todo.extend(f for f in files if f[0] in missing)
        entries = [e for e in entries if e.path not in missing]
    # One blob-store batch for the files and the manifest: a single filesystem flush when
    # it exits instead of two fsyncs per file. The stat cache is updated after it, so it
    # never names an object that is not durable yet.
    rows: list[tuple[str, StatKey, str]] = []
    with blobs.batch():
        if todo:
            entries.extend(_put_all(blobs, todo, rows, workers, progress, in_packs.values()))
        manifest = Manifest.of(entries)
        blob = blobs.put_bytes(manifest.to_bytes())
    cache.update(rows)
    cache.update_folder(base, fingerprint, str(blob.digest), manifest.total_size, len(entries))
    return Stored(blob.digest, manifest.total_size, len(entries), len(todo))


def _put_all(
    blobs: BlobStore, todo: list[tuple[str, str, os.stat_result]], rows: list[tuple[str, StatKey, str]],
    workers: int, progress: Progress | None, known: Iterable[ManifestEntry],
) -> list[ManifestEntry]:
    """Store ``todo`` (``BlobStore.put_entries``: threads for big local files, packs and
    concurrent requests on remote stores); appends the stat-cache rows to ``rows``."""
    out = blobs.put_entries(
        [(rel, Path(full)) for rel, full, _ in todo], known=known, workers=workers, progress=progress
    )
    for (_, full, st), entry in zip(todo, out, strict=True):
        rows.append((full, _key(st), str(entry.digest)))
    return out
