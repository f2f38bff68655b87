"""Writing an object out of the store to a user path, atomically."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO

from ._digest import ALGORITHM, Digest, new_hasher, read_chunks
from ._local import write_all

__all__ = ["copy_to"]


def copy_to(stream: BinaryIO, target: Path, digest: Digest, *, hashing: bool) -> Digest | None:
    """Copy ``stream`` to ``target`` through a temp file in the same folder, then rename.

    Readers of ``target`` see the old file or the complete new one, never a partial one.
    With ``hashing`` the bytes are hashed on the way; on a mismatch with ``digest`` the
    temp file is removed, ``target`` is left untouched and the actual digest returned for
    the caller to report. No fsync: the store still holds the bytes, so a power loss costs
    a re-download, not data, and materializing a large tree stays fast.

    Example::

        >>> copy_to(io.BytesIO(b"x"), Path("out.bin"), d, hashing=False)  # doctest: +SKIP
    """
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    # Mode 0o666 so the umask decides, as for any file the user creates.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
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
            os.replace(tmp, target)
        return actual
    finally:
        tmp.unlink(missing_ok=True)
