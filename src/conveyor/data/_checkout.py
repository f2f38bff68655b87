"""Getting a version's bytes out: ``get`` to a destination, ``load`` for Python code.

Files come out as hard links to the read-only objects where the store is a local folder
on the same filesystem (instant, no extra space), else as copies. Manifest paths are
validated by ``Manifest.from_bytes`` and each target is proven to stay under the
destination before anything is written.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.blobs import BlobStore, Digest, Manifest, check_relative_path
from conveyor.errors import UnsafePath

from conveyor.data._context import resolve
from conveyor.data._profile import read_table
from conveyor.data._refs import DatasetRef
from conveyor.data._versions import _settings, data_settings, get_version

if TYPE_CHECKING:
    import pandas as pd

    from conveyor.data._types import DatasetVersion

__all__ = ["get", "load", "manifest_of"]

_DONE = ".conveyor-complete"


def manifest_of(blobs: BlobStore, version: DatasetVersion) -> Manifest | None:
    """The manifest of a folder version (None for files and tables)."""
    return blobs.read_manifest(Digest.parse(version.digest)) if version.kind == "folder" else None


def _inside(root: Path, rel: str) -> Path:
    check_relative_path(rel)
    base = root.resolve()
    target = (base / rel).resolve()
    if not target.is_relative_to(base) or target == base:
        raise UnsafePath(
            f"unsafe manifest path {rel!r}: escapes the destination {str(root)!r}", field="path", value=rel,
            hint="the data set's manifest is corrupt or hostile; do not use it",
        )
    return target


def _basename(version: DatasetVersion) -> str:
    """The file or folder name to materialize under: the source's, unless it is unusable."""
    if version.source == "<DataFrame>":
        return f"{version.name}.parquet"
    name = Path(version.source).name
    return name if name not in ("", ".", "..") else version.name


def get(ref: str | DatasetRef, dest: str | os.PathLike[str], *, tracker: Any = None, link: bool = True) -> Path:
    """Write a version to ``dest`` and return the path written.

    A folder version fills the folder ``dest``; a file goes to ``dest`` itself, or into it
    under its original name when ``dest`` is an existing folder.

    Example::

        >>> conveyor.data.get("images@2", "checkout/images")  # doctest: +SKIP
        PosixPath('checkout/images')
    """
    version = get_version(ref, tracker=tracker)
    stores = resolve(tracker)
    blobs = stores.need_blobs()
    target = Path(dest)
    digest = Digest.parse(version.digest)
    if version.kind != "folder":
        if target.is_dir():
            target = target / _basename(version)
        target.parent.mkdir(parents=True, exist_ok=True)
        return blobs.get_file(digest, target, link=link)
    manifest = blobs.read_manifest(digest)
    # Validate every path before writing any file.
    targets = [(_inside(target, e.path), e.digest) for e in manifest.entries]
    target.mkdir(parents=True, exist_ok=True)
    for folder in sorted({t.parent for t, _ in targets}):
        folder.mkdir(parents=True, exist_ok=True)
    workers = data_settings(tracker).hash_workers

    def one(item: tuple[Path, Digest]) -> None:
        blobs.get_file(item[1], item[0], link=link, verify=not link)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, targets))
    return target


def load(ref: str | DatasetRef, *, tracker: Any = None) -> Path | pd.DataFrame:
    """A table version as a DataFrame; a file or folder version as a local path.

    Paths point into ``.conveyor/datasets/<name>/<version>/`` (hard links to the
    read-only stored objects where possible): read them, do not edit them.

    Example::

        >>> conveyor.data.load("train@3").shape  # doctest: +SKIP
        (455, 31)
    """
    version = get_version(ref, tracker=tracker)
    stores = resolve(tracker)
    blobs = stores.need_blobs()
    if version.kind == "table":
        with blobs.open_read(Digest.parse(version.digest)) as stream:
            return read_table(stream, version.format or "csv")
    settings = _settings(stores)
    home = settings.conveyor_dir / "datasets" / version.name / str(version.version)
    result = home / _basename(version)
    if not (home / _DONE).exists():
        get(f"{version.name}@{version.version}", result, tracker=tracker)
        (home / _DONE).touch()
    return result
