from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.blobs import (
    MANIFEST_MEDIA_TYPE,
    BlobStore,
    Digest,
    Manifest,
    ManifestEntry,
    check_relative_path,
)
from conveyor.errors import InvalidInput, UnsafePath

D = Digest("blake3", "ab" * 32)

UNSAFE = [
    "",
    "/etc/passwd",
    "../secret",
    "a/../../b",
    "a/./b",
    ".",
    "a//b",
    "a/",
    "a\\..\\b",
    "..\\evil",
    "a\x00b",
    "C:/Windows",
    "c:evil",
]


@pytest.mark.parametrize("path", UNSAFE)
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(UnsafePath):
        check_relative_path(path)
    with pytest.raises(UnsafePath):
        ManifestEntry(path, D, 1)


@pytest.mark.parametrize("path", ["a", "a/b/c.txt", "..a", "a..", ".hidden", "spaces ok/ü.txt"])
def test_safe_paths_pass(path: str) -> None:
    assert check_relative_path(path) == path


def test_manifest_encoding_is_canonical_and_round_trips() -> None:
    manifest = Manifest.of([ManifestEntry("b", D, 2), ManifestEntry("a/x", D, 1)])
    data = manifest.to_bytes()
    doc = json.loads(data)
    assert doc["media_type"] == MANIFEST_MEDIA_TYPE and doc["version"] == 1
    assert [e["path"] for e in doc["entries"]] == ["a/x", "b"]
    assert b" " not in data
    assert Manifest.from_bytes(data) == manifest
    assert Manifest.of(reversed(manifest.entries)).to_bytes() == data


def _doc(*paths: str) -> bytes:
    entries = [{"path": p, "digest": str(D), "size": 1} for p in paths]
    return json.dumps({"media_type": MANIFEST_MEDIA_TYPE, "version": 1, "entries": entries}).encode()


@pytest.mark.parametrize("path", UNSAFE)
def test_reading_refuses_unsafe_paths(path: str) -> None:
    with pytest.raises(UnsafePath):
        Manifest.from_bytes(_doc(path))


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        _doc("b", "a"),  # unsorted: not canonical
        _doc("a", "a"),
        _doc("a", "a/b"),  # a file that is also a folder
        json.dumps({"media_type": MANIFEST_MEDIA_TYPE, "version": 2, "entries": []}).encode(),
        json.dumps(
            {"media_type": MANIFEST_MEDIA_TYPE, "version": 1, "entries": [{"path": "a", "digest": str(D), "size": -1}]}
        ).encode(),
    ],
)
def test_reading_refuses_malformed_documents(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        Manifest.from_bytes(data)


def _tree(root: Path) -> Path:
    (root / "model" / "sub").mkdir(parents=True)
    (root / "model" / "weights.bin").write_bytes(b"w" * 1000)
    (root / "model" / "sub" / "copy.bin").write_bytes(b"w" * 1000)
    (root / "params.json").write_text('{"lr": 0.1}')
    (root / "empty.txt").write_bytes(b"")
    return root


def test_tree_round_trip(store: BlobStore, tmp_path: Path) -> None:
    tree = store.put_tree(_tree(tmp_path / "src"))
    manifest = store.read_manifest(tree.digest)
    assert [e.path for e in manifest.entries] == [
        "empty.txt",
        "model/sub/copy.bin",
        "model/weights.bin",
        "params.json",
    ]
    # two identical files + manifest + 2 others = 4 objects
    assert len(set(store.iter_digests())) == 4
    out = store.get_tree(tree.digest, tmp_path / "out")
    for entry in manifest.entries:
        assert (out / entry.path).read_bytes() == (tmp_path / "src" / entry.path).read_bytes()
    assert store.put_tree(tmp_path / "out") == tree  # same tree, same digest


def test_get_tree_refuses_a_hostile_manifest(store: BlobStore, tmp_path: Path) -> None:
    payload = store.put_bytes(b"pwned")
    entries = [{"path": "../escaped.txt", "digest": str(payload.digest), "size": 5}]
    doc = {"media_type": MANIFEST_MEDIA_TYPE, "version": 1, "entries": entries}
    hostile = store.put_bytes(json.dumps(doc).encode())
    with pytest.raises(UnsafePath):
        store.get_tree(hostile.digest, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()


def test_get_tree_refuses_symlink_escape_in_destination(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "link").mkdir(parents=True)
    (src / "link" / "f.txt").write_bytes(b"data")
    tree = store.put_tree(src)
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "link").symlink_to(outside)  # planted by someone else
    with pytest.raises(UnsafePath):
        store.get_tree(tree.digest, out)
    assert not (outside / "f.txt").exists()


def test_put_tree_refuses_symlinks_and_unsafe_names(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(UnsafePath):
        store.put_tree(src)
    (src / "passwd").unlink()
    (src / "back\\slash").write_bytes(b"x")
    with pytest.raises(UnsafePath):
        store.put_tree(src)
