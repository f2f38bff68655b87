"""Packs: many small files stored as a few objects, read back through the manifest."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.blobs import BlobStore, Digest, Manifest, ManifestEntry
from conveyor.blobs._pack import PACK_FILE_MAX, PACK_MIN_FILES, PACK_TARGET
from conveyor.errors import CorruptObject, InvalidInput, NotFound


def _tree(root: Path, count: int, *, size: int = 1024, salt: bytes = b"") -> Path:
    for i in range(count):
        path = root / f"d{i % 4}" / f"f{i:04}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(salt + i.to_bytes(4, "big") + os.urandom(size))
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_packed_round_trip_small_and_large(store: BlobStore, tmp_path: Path) -> None:
    root = _tree(tmp_path / "src", 60)
    (root / "big.bin").write_bytes(os.urandom(PACK_FILE_MAX + 1))
    (root / "d0" / "dup.bin").write_bytes((root / "d1" / "f0001.bin").read_bytes())  # same bytes twice
    tree = store.put_tree(root, pack=True)
    manifest = store.read_manifest(tree.digest)
    assert json.loads(store.read_bytes(tree.digest))["version"] == 2
    packed = [e for e in manifest.entries if e.pack is not None]
    loose = [e for e in manifest.entries if e.pack is None]
    assert [e.path for e in loose] == ["big.bin"]
    assert len(packed) == 61
    packs = {e.pack for e in packed}
    assert len(packs) == 1  # 61 KiB fit one pack
    dup = {e.path: e for e in packed}
    assert (dup["d0/dup.bin"].pack, dup["d0/dup.bin"].offset) == (dup["d1/f0001.bin"].pack, dup["d1/f0001.bin"].offset)
    # Objects: one pack, the big file, the manifest; a packed file is no object of its own.
    assert set(store.iter_digests()) == {*packs, loose[0].digest, tree.digest}
    assert not store.exists(packed[0].digest)
    with pytest.raises(NotFound):
        store.read_bytes(packed[0].digest)
    assert store.read_entry(packed[5]) == (root / packed[5].path).read_bytes()
    assert store.missing_entries(manifest.entries) == []
    seen: list[tuple[int, int]] = []
    out = store.get_tree(tree.digest, tmp_path / "out", progress=lambda d, t: seen.append((d, t)))
    assert _files(out) == _files(root)
    assert seen[-1] == (62, 62)
    # Checking out again over identical files writes nothing and raises nothing.
    store.get_tree(tree.digest, tmp_path / "out")


def test_many_files_fill_several_packs(store: BlobStore, tmp_path: Path) -> None:
    size = 200 * 1024
    count = PACK_TARGET // size * 2 + 3
    root = _tree(tmp_path / "src", count, size=size)
    entries = store.put_entries([(p.name, p) for p in sorted(root.rglob("*.bin"))], pack=True)
    packs = {e.pack for e in entries}
    assert None not in packs and len(packs) == 3
    out = store.get_tree(store.put_bytes(Manifest.of(entries).to_bytes()).digest, tmp_path / "out")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {p.name: p.read_bytes() for p in root.rglob("*.bin")}


def test_few_small_files_stay_loose(store: BlobStore, tmp_path: Path) -> None:
    root = _tree(tmp_path / "src", PACK_MIN_FILES - 1)
    tree = store.put_tree(root, pack=True)
    manifest = store.read_manifest(tree.digest)
    assert all(e.pack is None for e in manifest.entries)
    assert json.loads(store.read_bytes(tree.digest))["version"] == 1
    assert all(store.exists(e.digest) for e in manifest.entries)


def test_default_packs_only_remote_stores(store: BlobStore, tmp_path: Path) -> None:
    root = _tree(tmp_path / "src", 40)
    assert store.packs_by_default == store.url.startswith("s3://")
    entries = store.put_entries([(p.relative_to(root).as_posix(), p) for p in sorted(root.rglob("*.bin"))])
    assert all((e.pack is not None) == store.packs_by_default for e in entries)
    # put_tree keeps every file an object of its own unless asked.
    manifest = store.read_manifest(store.put_tree(root).digest)
    assert all(e.pack is None for e in manifest.entries)


def test_second_add_with_one_changed_file_stores_one_object(store: BlobStore, tmp_path: Path) -> None:
    root = _tree(tmp_path / "src", 50)
    files = [(p.relative_to(root).as_posix(), p) for p in sorted(root.rglob("*.bin"))]
    first = store.put_entries(files, pack=True)
    before = set(store.iter_digests())
    files[7][1].write_bytes(b"changed")
    second = store.put_entries(files, pack=True, known=first)
    new = set(store.iter_digests()) - before
    assert new == {second[7].digest}  # one loose object; the rest stay in the first pack
    assert second[7].pack is None
    assert [e for i, e in enumerate(second) if i != 7] == [e for i, e in enumerate(first) if i != 7]
    # Without the previous entries nothing tells where the packed files are: a new pack.
    third = store.put_entries(files, pack=True)
    assert len(set(store.iter_digests()) - before - new) == 1
    assert {e.pack for e in third if e.pack} != {e.pack for e in first}


def test_changed_known_pack_is_not_trusted_once_gone(store: BlobStore, tmp_path: Path) -> None:
    root = _tree(tmp_path / "src", 20)
    files = [(p.relative_to(root).as_posix(), p) for p in sorted(root.rglob("*.bin"))]
    first = store.put_entries(files, pack=True)
    pack = first[0].pack
    assert pack is not None and store.delete(pack)  # as if gc had collected it
    assert store.missing_entries(first) == first
    second = store.put_entries(files, pack=True, known=first)
    assert second == first  # the same files packed again: the same pack, stored anew
    assert store.exists(pack) and store.missing_entries(second) == []


def test_corrupt_pack_is_detected_by_get(
    store: BlobStore, corrupt: Callable[[Digest, bytes], None], tmp_path: Path
) -> None:
    root = _tree(tmp_path / "src", 30)
    tree = store.put_tree(root, pack=True)
    manifest = store.read_manifest(tree.digest)
    pack = manifest.entries[0].pack
    assert pack is not None
    data = bytearray(store.read_bytes(pack))
    data[manifest.entries[3].offset] ^= 0xFF
    corrupt(pack, bytes(data))
    with pytest.raises(CorruptObject, match=manifest.entries[3].path):
        store.get_tree(tree.digest, tmp_path / "out")
    assert not (tmp_path / "out" / manifest.entries[3].path).exists()
    with pytest.raises(CorruptObject, match="is corrupt"):
        store.read_entry(manifest.entries[3])
    assert store.read_entry(manifest.entries[3], verify=False) != (root / manifest.entries[3].path).read_bytes()
    assert not store.verify(pack)
    corrupt(pack, bytes(data[:10]))  # truncated
    with pytest.raises(CorruptObject, match="truncated"):
        store.read_entry(manifest.entries[-1])


def test_file_changed_while_packing_is_refused(store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.blobs import _pack
    from conveyor.errors import StorageError

    root = _tree(tmp_path / "src", 20)
    files = [(p.relative_to(root).as_posix(), p) for p in sorted(root.rglob("*.bin"))]
    real = _pack.plan_packs

    def plan_then_change(items):  # type: ignore[no-untyped-def]
        files[3][1].write_bytes(b"rewritten meanwhile")
        return real(items)

    monkeypatch.setattr(_pack, "plan_packs", plan_then_change)
    with pytest.raises(StorageError, match="changed while being stored"):
        store.put_entries(files, pack=True)


def test_old_format_manifest_still_reads(store: BlobStore) -> None:
    blob = store.put_bytes(b"hello")
    old = (
        '{"entries":[{"digest":"%s","path":"a.txt","size":5}],'
        '"media_type":"application/vnd.conveyor.manifest+json","version":1}' % blob.digest
    ).encode()
    manifest = Manifest.from_bytes(old)
    assert manifest.entries == (ManifestEntry("a.txt", blob.digest, 5),)
    assert manifest.to_bytes() == old  # an unpacked tree is written exactly as before
    stored = store.put_bytes(old)
    assert store.read_entry(store.read_manifest(stored.digest).entries[0]) == b"hello"


@pytest.mark.parametrize(
    "doc",
    [
        {"version": 1, "entries": [{"path": "a", "digest": "D", "size": 1, "pack": "D", "offset": 0}]},
        {"version": 2, "entries": [{"path": "a", "digest": "D", "size": 1}]},
        {"version": 2, "entries": [{"path": "a", "digest": "D", "size": 1, "pack": "D"}]},
        {"version": 2, "entries": [{"path": "a", "digest": "D", "size": 1, "pack": "D", "offset": -1}]},
        {"version": 2, "entries": [{"path": "a", "digest": "D", "size": 1, "pack": "nope", "offset": 0}]},
        {"version": 3, "entries": []},
    ],
)
def test_malformed_packed_manifests_are_refused(doc: dict[str, object]) -> None:
    d = "blake3:" + "0" * 64
    text = json.dumps({"media_type": "application/vnd.conveyor.manifest+json", **doc}).replace('"D"', f'"{d}"')
    with pytest.raises(InvalidInput):
        Manifest.from_bytes(text.encode())


def test_entry_offset_needs_a_pack() -> None:
    d = Digest.parse("blake3:" + "0" * 64)
    with pytest.raises(InvalidInput, match="offset without a pack"):
        ManifestEntry("a", d, 1, None, 5)
    entry = ManifestEntry("a", d, 1, d, 5)
    assert Manifest.from_bytes(Manifest.of([entry]).to_bytes()).entries == (entry,)


def test_inside_resolver_agrees_with_resolve_inside(tmp_path: Path) -> None:
    """get_tree's per-folder cache answers exactly what resolve_inside answers, links included."""
    from conveyor.blobs._safepath import inside_resolver, resolve_inside
    from conveyor.errors import UnsafePath

    root = tmp_path / "dest"
    (root / "real").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "inner").symlink_to(root / "real")  # a folder link that stays inside
    (root / "out").symlink_to(tmp_path / "outside")  # one that leaves
    (root / "real" / "f").symlink_to(root / "real" / "g")  # a file link inside
    (root / "real" / "h").symlink_to(tmp_path / "outside" / "x")  # a file link that leaves
    resolve = inside_resolver(root)
    for path in ["a.txt", "real/new.txt", "inner/new.txt", "real/f", "inner/f", "deep/er/file"]:
        assert resolve(path) == resolve_inside(root, path)
    for path in ["out/x", "real/h", "inner/h"]:
        with pytest.raises(UnsafePath):
            resolve_inside(root, path)
        with pytest.raises(UnsafePath):
            resolve(path)
