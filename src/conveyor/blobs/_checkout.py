"""Where a checkout may write: the destination rules every ``get`` obeys (a security boundary).

An artifact or data set is data someone else may have logged, so writing it out must not
take over the user's files. Every checkout (``BlobStore.get_file``/``get_tree``, and so
``conveyor artifacts get``, ``conveyor data get``, ``Tracker.download_artifact`` and
``conveyor.data.get``) follows these rules, checked for *every* file before the first
one is written:

- nothing is written into a ``.git`` folder, nor as a file named ``.git``, anywhere in the
  destination path (a ``.git/config`` or a ``.git`` gitdir pointer runs commands on the
  next ``git status``), ``force`` or not;
- an existing path that is not a regular file (a device such as ``/dev/full``, a FIFO, a
  socket, a symbolic link, a folder where a file goes) is refused, ``force`` or not;
- an existing regular file is left alone when it already holds exactly the object's bytes,
  and otherwise refused unless ``force``: nothing is overwritten by default.

The final step is race-free: a new file is linked into place with ``link(2)``, which fails
instead of replacing a file that appeared meanwhile; only ``force`` renames over one.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Final

from conveyor.errors import InvalidInput, UnsafePath

from ._digest import Digest, hash_stream

__all__ = ["DestinationExists", "check_destination", "place", "refuse_git"]

_GIT: Final = ".git"
_KINDS: Final = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


class DestinationExists(InvalidInput):
    """A checkout would overwrite existing files that hold other bytes."""

    def __init__(self, paths: list[Path]) -> None:
        shown = ", ".join(repr(str(p)) for p in paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        super().__init__(
            f"{len(paths)} file(s) already exist with other content: {shown}; nothing was written",
            field="dest",
            value=str(paths[0]),
            hint="choose a new destination, or pass --force (force=True) to overwrite them",
        )
        self.paths = paths


def refuse_git(target: Path, *, resolved: bool = False) -> None:
    """Refuse any destination with a ``.git`` segment (case-insensitive: macOS, Windows).

    ``resolved``: ``target`` is already absolute with every link resolved (from
    ``resolve_inside``), so resolving it again would find the same segments."""
    parts = target.parts if resolved else (*target.absolute().parts, *target.resolve().parts)
    for part in parts:
        if part.casefold() == _GIT:
            raise UnsafePath(
                f"refusing to write {str(target)!r}: it lies in or names a .git folder",
                field="dest",
                value=str(target),
                hint="artifacts and data sets are never checked out into .git; choose another destination",
            )


def _kind(mode: int) -> str | None:
    for test, name in _KINDS:
        if test(mode):
            return name
    return None


def check_destination(
    target: Path, digest: Digest, size: int | None, *, force: bool, resolved: bool = False
) -> bool:
    """Whether ``target`` must be written; raises if writing it is not allowed.

    False means the file is already there with exactly these bytes (nothing to do).
    A conflicting regular file raises :class:`DestinationExists` unless ``force``.
    ``resolved`` as in :func:`refuse_git`.
    """
    refuse_git(target, resolved=resolved)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return True
    except NotADirectoryError:  # a parent is a file: mkdir will say so clearly
        return True
    kind = _kind(st.st_mode)
    if kind is not None or not stat.S_ISREG(st.st_mode):
        raise UnsafePath(
            f"refusing to write {str(target)!r}: it exists and is {kind or 'not a regular file'}",
            field="dest",
            value=str(target),
            hint="checkouts only create or (with --force) replace regular files; choose another destination",
        )
    if size is None or st.st_size == size:
        with open(target, "rb") as stream:
            if hash_stream(stream).digest == digest:
                return False
    if force:
        return True
    raise DestinationExists([target])


def place(tmp: Path, target: Path, *, force: bool) -> None:
    """Move the finished temp file ``tmp`` to ``target``: replace only with ``force``."""
    if force:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise DestinationExists([target]) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # No hard links on this filesystem: check, then rename (a small window remains).
        if os.path.lexists(target):
            raise DestinationExists([target]) from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)
