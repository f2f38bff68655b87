"""Writing an object out of the store to a user path, atomically and without clobbering."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO

from ._checkout import place
from ._digest import ALGORITHM, Digest, new_hasher, read_chunks
from ._local import write_all

__all__ = ["copy_to", "write_bytes_to"]


def _tmp_for(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")


def copy_to(
    stream: BinaryIO, target: Path, digest: Digest, *, hashing: bool, force: bool = False, mode: int = 0o666
) -> Digest | None:
    """Copy ``stream`` to ``target`` through a temp file in the same folder, then place it.

    Readers of ``target`` see the old file or the complete new one, never a partial one.
    With ``hashing`` the bytes are hashed on the way; on a mismatch with ``digest`` the
    temp file is removed, ``target`` is left untouched and the actual digest returned for
    the caller to report. The file is linked into place only if ``target`` does not exist
    (``force`` renames over it; see ``_checkout.place``). No fsync: the store still holds
    the bytes, so a power loss costs a re-download, not data.

    Example::

        >>> copy_to(io.BytesIO(b"x"), Path("out.bin"), d, hashing=False)  # doctest: +SKIP
    """
    tmp = _tmp_for(target)
    # Mode 0o666 by default so the umask decides, as for any file the user creates.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        hasher = new_hasher() if hashing else None
        try:
            for chunk in read_chunks(stream):
                if hasher is not None:
                    hasher.update(chunk)
                write_all(fd, chunk)
        finally:
            os.close(fd)
        actual = Digest(ALGORITHM, hasher.hexdigest()) if hasher is not None else None
        if actual is None or actual == digest:
            place(tmp, target, force=force)
        return actual
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_to(data: bytes, target: Path, *, force: bool = False, mode: int = 0o666) -> None:
    """Write already-verified bytes to ``target`` (temp file, then :func:`place`)."""
    tmp = _tmp_for(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        place(tmp, target, force=force)  # consumes tmp when it succeeds
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
