"""Validation of the relative paths inside a manifest: a security boundary.

A manifest names files that :meth:`BlobStore.get_tree` later writes under a destination
folder. A hostile or corrupted manifest must not be able to write anywhere else, so every
path is checked when a manifest is built *and* when one is read (MLflow's artifact
path-traversal CVEs came from ``..``, ``\\``, absolute paths and odd encodings). Only a
plain POSIX relative path survives; nothing is decoded or normalized first, so nothing can
be smuggled through a decoding step.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Final

from conveyor.errors import UnsafePath

__all__ = ["check_relative_path", "folder_files", "inside_resolver", "resolve_inside"]

# "C:" as a first segment is a drive on Windows; refuse it everywhere so a manifest
# written on Linux is also safe to materialize on Windows.
_DRIVE_RE: Final = re.compile(r"[A-Za-z]:")


def _unsafe(path: object, why: str) -> UnsafePath:
    return UnsafePath(
        f"unsafe manifest path {path!r}: {why}",
        field="path",
        value=path,
        hint="manifest paths are relative POSIX paths such as 'data/train.csv'",
    )


def check_relative_path(path: str) -> str:
    """Return ``path`` unchanged if it is a safe relative POSIX path, else raise.

    Refused: non-strings, empty paths, NUL, backslashes, absolute paths, empty segments
    (``a//b``, trailing ``/``), ``.`` and ``..`` segments, and Windows drive prefixes.

    Example::

        >>> check_relative_path("model/weights.bin")
        'model/weights.bin'
        >>> check_relative_path("../etc/passwd")
        Traceback (most recent call last):
        conveyor.errors.UnsafePath: unsafe manifest path '../etc/passwd': ...
    """
    if not isinstance(path, str):
        raise _unsafe(path, "not a string")
    if not path:
        raise _unsafe(path, "empty")
    if "\x00" in path:
        raise _unsafe(path, "contains NUL")
    if "\\" in path:
        raise _unsafe(path, "contains a backslash")
    if path.startswith("/"):
        raise _unsafe(path, "absolute")
    segments = path.split("/")
    if _DRIVE_RE.match(segments[0]):
        raise _unsafe(path, "starts with a drive letter")
    for segment in segments:
        if segment == "":
            raise _unsafe(path, "has an empty segment")
        if segment in (".", ".."):
            raise _unsafe(path, f"has a {segment!r} segment")
    return path


def resolve_inside(root: Path, path: str) -> Path:
    """Join a checked relative path onto ``root`` and prove it stays inside.

    The lexical check above is the real guard; resolving catches what it cannot see,
    such as a symlink already present in the destination folder.

    Example::

        >>> resolve_inside(Path("/tmp/out"), "a/b.txt").as_posix()  # doctest: +SKIP
        '/tmp/out/a/b.txt'
    """
    check_relative_path(path)
    base = root.resolve()
    target = (base / path).resolve()
    if not target.is_relative_to(base) or target == base:
        raise _unsafe(path, f"escapes the destination {str(root)!r}")
    return target


def inside_resolver(root: Path) -> Callable[[str], Path]:
    """:func:`resolve_inside` for many paths under one ``root`` (a checkout of thousands of
    files): the root and each parent folder are resolved once, and a path whose last
    segment is a symbolic link goes through :func:`resolve_inside` itself, so every answer
    is the one :func:`resolve_inside` gives at that moment (fully resolved, inside ``root``).
    """
    base = root.resolve()
    parents: dict[str, Path] = {}

    def resolve(path: str) -> Path:
        check_relative_path(path)
        folder, _, name = path.rpartition("/")
        parent = parents.get(folder)
        if parent is None:
            parent = (base / folder).resolve() if folder else base
            if not parent.is_relative_to(base):
                raise _unsafe(path, f"escapes the destination {str(root)!r}")
            parents[folder] = parent
        candidate = parent / name
        if os.path.islink(candidate):
            return resolve_inside(root, path)
        return candidate

    return resolve


def folder_files(root: Path) -> list[tuple[str, Path]]:
    """Every file below ``root`` as ``(safe relative POSIX path, full path)``, walked in
    sorted order; a symbolic link anywhere in the folder is refused (``UnsafePath``)."""
    files: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            full = base / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                raise UnsafePath(
                    f"{rel!r} in {str(root)!r} is a symbolic link", field="path", value=rel,
                    hint="copy the target into the folder, or remove the link",
                )
            if name in filenames:
                files.append((check_relative_path(rel), full))
    return files
