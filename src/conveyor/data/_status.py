"""``conveyor data status PATH``: has a folder changed since its latest version? (like ``dvc status``)

The no-change answer is the common case and must be fast from a fresh process, so this
module imports only the standard library, BLAKE3, the settings and the stat cache: no
SQLAlchemy, no pandas. A folder is unchanged when the fingerprint of its files' paths and
stat keys (size, mtime, inode) is the one the stat cache recorded for a manifest, and that
manifest is the data set's latest version and is still stored. With a SQLite metadata
store the latest version is read with the standard library's ``sqlite3`` (read-only, two
tables, no schema change); any other store, any S3 artifact store and any miss fall back
to the full path (:func:`status`), which hashes what changed and lists the differences.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.errors import NotFound

from conveyor.data._scan import _fingerprint, _scan
from conveyor.data._statcache import StatCache

__all__ = ["FolderStatus", "quick_unchanged", "status"]


@dataclass
class FolderStatus:
    """How a folder compares with the latest version of its data set."""

    path: str
    name: str | None
    version: int | None
    state: str  # "unchanged", "changed" or "new" (no version yet)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str | None:
        return None if self.name is None or self.version is None else f"data:/{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "name": self.name, "version": self.version, "ref": self.ref, "state": self.state,
                "added": self.added, "removed": self.removed, "modified": self.modified}


def _sqlite_path(metadata_url: str) -> str | None:
    prefix = "sqlite:///"
    if not metadata_url.startswith(prefix) or metadata_url == "sqlite:///:memory:":
        return None
    return metadata_url[len(prefix):].split("?", 1)[0]


def _latest_sqlite(db: str, name: str | None, source: str) -> tuple[str, int, str] | None:
    """(name, version, digest) of the latest version of ``name`` (or of the data set last
    added from ``source``), read-only with the standard library."""
    if not os.path.exists(db):
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        if name is None:
            row = conn.execute(
                "SELECT d.name FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id "
                "WHERE v.source = ? ORDER BY v.created_at DESC LIMIT 1", (source,)
            ).fetchone()
            if row is None:
                return None
            name = str(row[0])
        row = conn.execute(
            "SELECT v.version, v.digest FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id "
            "WHERE d.name = ? ORDER BY v.version DESC LIMIT 1", (name,)
        ).fetchone()
    except sqlite3.Error:
        return None  # an older schema, a locked file: the full path answers
    finally:
        conn.close()
    return None if row is None else (name, int(row[0]), str(row[1]))


def quick_unchanged(path: str | os.PathLike[str], name: str | None = None, *, settings: Any = None) -> FolderStatus | None:
    """The unchanged answer for a folder without SQLAlchemy, or None when this path cannot
    tell (then ask :func:`status`). Never says "unchanged" wrongly: every condition of the
    module docstring must hold.

    Example::

        >>> quick_unchanged("data/images", "images").ref  # doctest: +SKIP
        'data:/images@3'
    """
    from conveyor.settings import Settings

    settings = settings or Settings.load()
    root = Path(path)
    db = _sqlite_path(settings.metadata_url)
    artifacts = settings.artifacts_url
    if db is None or "://" in artifacts or not root.is_dir():
        return None
    base = str(root.absolute())
    known = StatCache(settings.conveyor_dir / "data-cache.db").lookup_folder(base, _fingerprint(_scan(Path(base))))
    if known is None:
        return None
    latest = _latest_sqlite(db, name, base)
    if latest is None or latest[2] != known[0]:
        return None
    digest_hex = latest[2].partition(":")[2]
    if not os.path.isfile(os.path.join(artifacts, digest_hex[:2], digest_hex[2:])):
        return None  # the manifest was collected: the full path stores it again
    return FolderStatus(str(root), latest[0], latest[1], "unchanged")


def status(path: str | os.PathLike[str], name: str | None = None, *, tracker: Any = None) -> FolderStatus:
    """Compare a folder with the latest version of ``name`` (default: the data set last added
    from this folder): unchanged, or the files added, removed and modified. Nothing is stored.

    Example::

        >>> conveyor.data.status("data/images").state  # doctest: +SKIP
        'unchanged'
    """
    root = Path(path)
    if not root.is_dir():
        raise NotFound("folder", str(root), hint="data status compares a folder with its latest version")
    if tracker is None and (quick := quick_unchanged(root, name)) is not None:
        return quick
    from conveyor.blobs import Digest
    from conveyor.blobs._digest import hash_stream
    from conveyor.data._context import blobs_for, remote_http, resolve
    from conveyor.data._versions import _settings, get_version

    remote = remote_http(tracker) is not None
    settings = _settings(None if remote else resolve(tracker))
    base = str(root.absolute())
    if name is None and not remote:
        found = _latest_sqlite(_sqlite_path(settings.metadata_url) or "", None, base)
        name = found[0] if found is not None else None
    if name is None:  # remote mode, or a store the quick read cannot open: this project's record
        name = StatCache(settings.conveyor_dir / "data-cache.db").added_to(base)
    if name is None:
        return FolderStatus(str(root), None, None, "new", added=sorted(rel for rel, _, _ in _scan(Path(base))))
    try:
        version = get_version(name, tracker=tracker)
    except NotFound:
        return FolderStatus(str(root), name, None, "new", added=sorted(rel for rel, _, _ in _scan(Path(base))))
    if version.kind != "folder":
        return FolderStatus(str(root), name, version.version, "changed", added=sorted(r for r, _, _ in _scan(Path(base))))
    manifest = {e.path: e.digest for e in blobs_for(tracker, name, version.version).read_manifest(
        Digest.parse(version.digest)).entries}
    cached = StatCache(settings.conveyor_dir / "data-cache.db").lookup_tree(base)
    out = FolderStatus(str(root), name, version.version, "unchanged")
    seen = set()
    for rel, full, st in sorted(_scan(Path(base))):
        seen.add(rel)
        if rel not in manifest:
            out.added.append(rel)
            continue
        hit = cached.get(full)
        if hit is not None and hit[0] == (st.st_size, st.st_mtime_ns, st.st_ino):
            digest = Digest.parse(hit[1])
        else:
            with open(full, "rb") as stream:
                digest = hash_stream(stream).digest
        if digest != manifest[rel]:
            out.modified.append(rel)
    out.removed = sorted(set(manifest) - seen)
    if out.added or out.removed or out.modified:
        out.state = "changed"
    return out
