"""Digests: the name of every object in the artifact store.

A digest always carries its algorithm (``blake3:<64 hex>``) so the store can move to
another hash later without guessing what an old name means. Hashing is streamed in
fixed-size chunks, so memory stays flat whatever the input size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Iterator
from typing import BinaryIO, Final

import blake3

from conveyor.errors import InvalidInput

__all__ = [
    "ALGORITHM",
    "Blob",
    "CHUNK_SIZE",
    "Digest",
    "hash_bytes",
    "hash_stream",
    "new_hasher",
    "read_chunks",
]

ALGORITHM: Final = "blake3"
# 4 MiB measured best on the reference VM (see benchmarks/bench_blobs.py): big enough for
# BLAKE3's multithreading to pay off, small enough to keep memory flat.
CHUNK_SIZE: Final = 4 * 1024 * 1024
# Below this, spawning hash threads costs more than it saves.
_THREADED_MIN: Final = 1024 * 1024
_HEX_RE: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Digest:
    """The content address of one object: algorithm plus lowercase hex.

    Example::

        >>> d = Digest.parse("blake3:" + "ab" * 32)
        >>> str(d) == "blake3:" + "ab" * 32, d.hex[:2]
        (True, 'ab')
    """

    algorithm: str
    hex: str

    def __post_init__(self) -> None:
        # Validate here too, so an invalid Digest can never exist (it becomes a path).
        if self.algorithm != ALGORITHM:
            raise InvalidInput(
                f"unknown digest algorithm {self.algorithm!r}",
                field="digest",
                value=self.algorithm,
                hint=f"conveyor digests look like '{ALGORITHM}:<64 lowercase hex>'",
            )
        if not isinstance(self.hex, str) or not _HEX_RE.fullmatch(self.hex):
            raise InvalidInput(
                f"bad {ALGORITHM} hex {self.hex!r}: expected 64 lowercase hex characters",
                field="digest",
                value=self.hex,
            )

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``"blake3:<hex>"``; raise :class:`InvalidInput` naming the value.

        Example::

            >>> Digest.parse("blake3:" + "0" * 64).algorithm
            'blake3'
        """
        if not isinstance(text, str) or ":" not in text:
            raise InvalidInput(
                f"bad digest {text!r}: expected '{ALGORITHM}:<64 lowercase hex>'",
                field="digest",
                value=text,
            )
        algorithm, _, hex_ = text.partition(":")
        try:
            return cls(algorithm, hex_)
        except InvalidInput as exc:
            raise InvalidInput(
                f"bad digest {text!r}: {exc.message}", field="digest", value=text
            ) from None

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


@dataclass(frozen=True, slots=True)
class Blob:
    """A stored object: its digest and its size in bytes.

    Example::

        >>> store.put_bytes(b"hi")  # doctest: +SKIP
        Blob(digest=Digest(algorithm='blake3', hex='…'), size=2)
    """

    digest: Digest
    size: int


def new_hasher(expected_size: int | None = None) -> blake3.blake3:
    """A fresh BLAKE3 hasher, multithreaded when the input is (or may be) large.

    Example::

        >>> h = new_hasher(); h.update(b"x"); len(h.hexdigest())
        64
    """
    threaded = expected_size is None or expected_size >= _THREADED_MIN
    return blake3.blake3(max_threads=blake3.blake3.AUTO if threaded else 1)


def hash_bytes(data: bytes) -> Digest:
    """The digest of an in-memory byte string.

    Example::

        >>> str(hash_bytes(b"")).startswith("blake3:af1349b9")
        True
    """
    hasher = new_hasher(len(data))
    hasher.update(data)
    return Digest(ALGORITHM, hasher.hexdigest())


def read_chunks(stream: BinaryIO) -> Iterator[bytes | memoryview]:
    """Yield a stream's bytes in chunks of at most :data:`CHUNK_SIZE`.

    Uses ``readinto`` into one reused buffer when the stream has it (no allocation per
    chunk), so a yielded ``memoryview`` is only valid until the next iteration.

    Example::

        >>> import io; [bytes(c) for c in read_chunks(io.BytesIO(b"ab"))]
        [b'ab']
    """
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        while chunk := stream.read(CHUNK_SIZE):
            yield chunk
        return
    view = memoryview(bytearray(CHUNK_SIZE))
    while n := readinto(view):
        yield view[:n]


def hash_stream(stream: BinaryIO) -> Blob:
    """Hash a binary stream from its current position to EOF, in constant memory.

    Example::

        >>> import io; hash_stream(io.BytesIO(b"abc")).size
        3
    """
    hasher = new_hasher()
    size = 0
    for chunk in read_chunks(stream):
        hasher.update(chunk)
        size += len(chunk)
    return Blob(Digest(ALGORITHM, hasher.hexdigest()), size)


def spool_hashed(stream: BinaryIO, spool: BinaryIO) -> tuple[Digest, int]:
    """Copy ``stream`` into ``spool`` while hashing it: a remote object's key needs the digest
    before its upload starts. Returns the digest and the size."""
    hasher, size = new_hasher(), 0
    for chunk in read_chunks(stream):
        hasher.update(chunk)
        spool.write(chunk)
        size += len(chunk)
    return Digest(ALGORITHM, hasher.hexdigest()), size
