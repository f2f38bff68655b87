"""Find every pickle stream in a model package: whole files, zip archive members (PyTorch
``.pt``, Keras ``.keras``, skops, ``.npz``; nested archives too) and object-dtype ``.npy``
arrays, whose bytes after the header are a pickle.

A stream counts as a pickle when ``pickletools`` parses it, without executing anything,
from its first opcode to a ``STOP`` that is its last byte: that finds protocol 0 and 1 pickles, which have no
``\\x80`` header, and does not flag tensor data that merely starts with ``\\x80\\x02``.
The flavor suite uses this to hold every flavor to "no pickle", except the members a
flavor declares in ``restricted_pickles`` (PyTorch's, read by restricted unpicklers).
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from collections.abc import Iterator
from pathlib import Path

#: nested archives deeper than this are reported as unreadable rather than followed
MAX_DEPTH = 3


def is_pickle(data: bytes) -> bool:
    """True when ``data`` is a complete pickle stream (parsed with ``pickletools``, never run)."""
    if not data:
        return False
    try:
        for opcode, _arg, pos in pickletools.genops(io.BytesIO(data)):
            if opcode.name == "STOP":
                return pos == len(data) - 1  # a pickle file or member ends at its STOP
    except Exception:  # noqa: BLE001 - anything that does not parse is not a pickle
        return False
    return False


def _npy_holds_objects(data: bytes) -> bool:
    import numpy as np
    from numpy.lib import format as npy

    stream = io.BytesIO(data)
    try:
        major, _minor = npy.read_magic(stream)
        reader = npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0
        _shape, _order, dtype = reader(stream)
    except Exception:  # noqa: BLE001 - not an .npy array after all
        return False
    return bool(np.dtype(dtype).hasobject)


def _scan(name: str, data: bytes, depth: int) -> Iterator[str]:
    if data[:4] == b"PK\x03\x04" and zipfile.is_zipfile(io.BytesIO(data)):
        if depth >= MAX_DEPTH:
            yield f"{name} (archive nested too deep to check)"
            return
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.infolist():
                if not member.is_dir():
                    yield from _scan(f"{name}/{member.filename}", archive.read(member), depth + 1)
        return
    if data[:6] == b"\x93NUMPY":
        if _npy_holds_objects(data):
            yield f"{name} (object array: pickled)"
        return
    if is_pickle(data):
        yield name


def pickle_streams(path: str | Path, *, name: str | None = None) -> list[str]:
    """Every pickle inside the file at ``path``, as ``name/member/…`` paths (``[]`` when none).

    Example::

        >>> pickle_streams("pkg/model.pt", name="model.pt")  # doctest: +SKIP
        ['model.pt/model/data.pkl', 'model.pt/model/constants.pkl', ...]
    """
    target = Path(path)
    return list(_scan(name or target.name, target.read_bytes(), 0))


__all__ = ["MAX_DEPTH", "is_pickle", "pickle_streams"]
