from __future__ import annotations

import io

import pytest

from conveyor.blobs import Digest
from conveyor.blobs._digest import hash_bytes, hash_stream
from conveyor.errors import InvalidInput

EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"  # BLAKE3("")


def test_str_and_parse_round_trip() -> None:
    digest = Digest.parse(f"blake3:{EMPTY}")
    assert (digest.algorithm, digest.hex) == ("blake3", EMPTY)
    assert str(digest) == f"blake3:{EMPTY}"
    assert Digest.parse(str(digest)) == digest


def test_hashing_matches_the_blake3_test_vector() -> None:
    assert hash_bytes(b"").hex == EMPTY
    assert hash_stream(io.BytesIO(b"")).digest.hex == EMPTY
    data = bytes(range(256)) * 40_000  # > one chunk, so the multithreaded path runs
    assert hash_stream(io.BytesIO(data)).digest == hash_bytes(data)


@pytest.mark.parametrize(
    "text",
    [
        f"sha256:{EMPTY}",
        f"BLAKE3:{EMPTY}",
        EMPTY,
        f"blake3:{EMPTY[:-1]}",
        f"blake3:{EMPTY}0",
        f"blake3:{EMPTY.upper()}",
        f"blake3:{EMPTY[:-1]}g",
        "blake3:",
        "",
    ],
)
def test_parse_rejects_and_names_the_value(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        Digest.parse(text)
    assert repr(text) in str(info.value)
    assert info.value.value == text


def test_digest_is_frozen_and_validated_on_construction() -> None:
    digest = Digest("blake3", EMPTY)
    with pytest.raises(AttributeError):
        digest.hex = "00" * 32  # type: ignore[misc]
    with pytest.raises(InvalidInput):
        Digest("blake3", "../../etc/passwd")
