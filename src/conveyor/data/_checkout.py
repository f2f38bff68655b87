"""Getting a version's bytes out: ``get`` to a destination, ``load`` for Python code.

Files come out as copies, hashed on the way and compared with their digest: never hard
links to the stored objects, so editing a checked-out file cannot change the store (the
machine's ext4 has no reflinks; a copy is the only independent file). ``load``'s cached
copies under ``.conveyor/datasets/`` are read-only (mode 0444) and verified when written.
Manifest paths are validated by ``Manifest.from_bytes``, each target is proven to stay
under the destination, and the blob store's checkout rules apply (see
``conveyor.blobs._checkout``): no file is overwritten unless ``force``, nothing is written
into ``.git`` or onto a device, all checked before anything is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.blobs import BlobStore, Digest, Manifest

from conveyor.data._context import blobs_for, remote_http, resolve
from conveyor.data._profile import read_table
from conveyor.data._refs import DatasetRef
from conveyor.data._versions import _settings, get_version

if TYPE_CHECKING:
    import pandas as pd

    from conveyor.data._types import DatasetVersion

__all__ = ["get", "load", "manifest_of"]

_DONE = ".conveyor-complete"


def manifest_of(blobs: BlobStore, version: DatasetVersion) -> Manifest | None:
    """The manifest of a folder version (None for files and tables)."""
    return blobs.read_manifest(Digest.parse(version.digest)) if version.kind == "folder" else None


def _basename(version: DatasetVersion) -> str:
    """The file or folder name to materialize under: the source's, unless it is unusable."""
    if version.source == "<DataFrame>":
        return f"{version.name}.parquet"
    name = Path(version.source).name
    return name if name not in ("", ".", "..") else version.name


def get(
    ref: str | DatasetRef, dest: str | os.PathLike[str], *, tracker: Any = None, force: bool = False, mode: int = 0o666
) -> Path:
    """Write a version to ``dest`` as verified copies and return the path written.

    A folder version fills the folder ``dest``; a file goes to ``dest`` itself, or into it
    under its original name when ``dest`` is an existing folder. An existing file with
    other bytes is an error (``DestinationExists``, nothing written) unless ``force``; one
    with the same bytes is kept. ``mode`` is the files' permission bits before the umask.

    Example::

        >>> conveyor.data.get("images@2", "checkout/images")  # doctest: +SKIP
        PosixPath('checkout/images')
    """
    version = get_version(ref, tracker=tracker)
    blobs = blobs_for(tracker, version.name, version.version)
    target = Path(dest)
    digest = Digest.parse(version.digest)
    if version.kind != "folder":
        if target.is_dir() and not target.is_symlink():
            target = target / _basename(version)
        target.parent.mkdir(parents=True, exist_ok=True)
        return blobs.get_file(digest, target, force=force, mode=mode)
    return blobs.get_tree(digest, target, force=force, mode=mode)


def load(ref: str | DatasetRef, *, tracker: Any = None) -> Path | pd.DataFrame:
    """A table version as a DataFrame; a file or folder version as a local path.

    Paths point into ``.conveyor/datasets/<name>/<version>/``: read-only copies, verified
    against their digests when written (editing them cannot change the store).

    Example::

        >>> conveyor.data.load("train@3").shape  # doctest: +SKIP
        (455, 31)
    """
    version = get_version(ref, tracker=tracker)
    remote = remote_http(tracker) is not None
    if version.kind == "table" and not remote:
        with resolve(tracker).need_blobs().open_read(Digest.parse(version.digest)) as stream:
            return read_table(stream, version.format or "csv")
    # Remote mode reads tables from the same verified local copy (Parquet needs to seek).
    settings = _settings(None if remote else resolve(tracker))
    home = settings.conveyor_dir / "datasets" / version.name / str(version.version)
    result = home / _basename(version)
    if not (home / _DONE).exists():
        get(f"{version.name}@{version.version}", result, tracker=tracker, mode=0o444)
        (home / _DONE).touch()
    return read_table(result, version.format or "csv") if version.kind == "table" else result
