"""Data sets of many small files on a remote store: packed on add, unpacked on get, kept by
gc, checked by doctor (against moto's S3 server); a local store keeps loose objects."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import conveyor.data as cd
from conveyor.blobs import BlobStore, Digest
from conveyor.errors import CorruptObject
from conveyor.store import collect_garbage, doctor


@pytest.fixture
def s3_tracker(store: Any, s3_server: str, s3_bucket_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from conveyor.data._context import reset_defaults
    from conveyor.settings import TrackingSettings
    from conveyor.tracking import Tracker

    blobs = BlobStore.open(s3_bucket_url + "/blobs", s3_endpoint_url=s3_server)
    blobs.init()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    tracker = Tracker(store, blobs, TrackingSettings(flush_interval=0.05))
    yield tracker
    tracker.close()
    reset_defaults()


def _tree(root: Path, count: int, salt: bytes = b"") -> Path:
    for i in range(count):
        path = root / f"d{i % 5}" / f"f{i:04}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(salt + i.to_bytes(4, "big") + os.urandom(2048))
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _manifest(tracker: Any, version: Any) -> Any:
    return tracker.blobs.read_manifest(Digest.parse(version.digest))


@pytest.mark.s3
def test_add_packs_and_get_unpacks_on_s3(s3_tracker: Any, tmp_path: Path) -> None:
    root = _tree(tmp_path / "many", 120)
    (root / "big.bin").write_bytes(os.urandom(300 * 1024))  # over the pack limit: loose
    v1 = cd.add(root, name="many", tracker=s3_tracker)
    manifest = _manifest(s3_tracker, v1)
    assert json.loads(s3_tracker.blobs.read_bytes(Digest.parse(v1.digest)))["version"] == 2
    packs = {e.pack for e in manifest.entries if e.pack is not None}
    assert len(packs) == 1 and [e.path for e in manifest.entries if e.pack is None] == ["big.bin"]
    # One pack, one loose file, one manifest: 3 objects for 121 files.
    assert len(set(s3_tracker.blobs.iter_digests())) == 3
    out = cd.get("many@1", tmp_path / "checkout", tracker=s3_tracker)
    assert _files(out) == _files(root)
    report = doctor(s3_tracker.store, s3_tracker.blobs, quick=True)
    assert report.healthy and report.orphans == [] and report.missing == []
    assert doctor(s3_tracker.store, s3_tracker.blobs).healthy

    # A second add with one changed file: one new loose object and a new manifest.
    before = set(s3_tracker.blobs.iter_digests())
    (root / "d2" / "f0002.bin").write_bytes(b"changed")
    v2 = cd.add(root, name="many", tracker=s3_tracker)
    new = set(s3_tracker.blobs.iter_digests()) - before
    changed = next(e for e in _manifest(s3_tracker, v2).entries if e.path == "d2/f0002.bin")
    assert changed.pack is None and new == {changed.digest, Digest.parse(v2.digest)}
    assert cd.diff("many@1", "many@2", tracker=s3_tracker).changed == ("d2/f0002.bin",)
    assert _files(cd.get("many@2", tmp_path / "checkout2", tracker=s3_tracker)) == _files(root)

    # A fresh stat cache (another clone): the files are hashed, and found in the old pack.
    for cache in (Path.cwd() / ".conveyor").rglob("*"):
        if cache.is_file():
            cache.unlink()
    (root / "d3" / "f0003.bin").write_bytes(b"changed too")
    before = set(s3_tracker.blobs.iter_digests())
    v3 = cd.add(root, name="many", tracker=s3_tracker)
    assert len(set(s3_tracker.blobs.iter_digests()) - before) == 2  # the file and the manifest
    assert {e.pack for e in _manifest(s3_tracker, v3).entries if e.pack} == packs


@pytest.mark.s3
def test_gc_keeps_live_packs_and_doctor_finds_bad_ones(s3_tracker: Any, tmp_path: Path) -> None:
    blobs = s3_tracker.blobs
    v1 = cd.add(_tree(tmp_path / "kept", 40), name="kept", tracker=s3_tracker)
    live = {e.pack for e in _manifest(s3_tracker, v1).entries}
    # A packed tree nothing references: its manifest and pack are garbage.
    orphan = blobs.put_tree(_tree(tmp_path / "orphan", 40, salt=b"o"), pack=True)
    dead = {e.pack for e in blobs.read_manifest(orphan.digest).entries}
    assert len(live) == len(dead) == 1
    report = collect_garbage(s3_tracker.store, blobs, grace_seconds=0)
    assert set(report.removed) == {str(orphan.digest), *map(str, dead)}
    assert set(blobs.iter_digests()) == {Digest.parse(v1.digest), *live}
    assert _files(cd.get("kept@1", tmp_path / "out", tracker=s3_tracker)) == _files(tmp_path / "kept")

    pack = next(iter(live))
    assert pack is not None
    data = blobs.read_bytes(pack)
    blobs._backend.fs.pipe_file(blobs._backend._key(pack), data[:-1] + bytes([data[-1] ^ 1]))
    quick = doctor(s3_tracker.store, blobs, quick=True)
    assert quick.healthy  # same size: only re-hashing finds it
    full = doctor(s3_tracker.store, blobs)
    assert full.corrupt == [str(pack)] and not full.healthy
    with pytest.raises(CorruptObject, match="in pack"):
        cd.get("kept@1", tmp_path / "out2", tracker=s3_tracker)
    blobs._backend.fs.pipe_file(blobs._backend._key(pack), data[:100])  # truncated
    assert doctor(s3_tracker.store, blobs, quick=True).corrupt == [str(pack)]
    blobs.delete(pack)
    assert doctor(s3_tracker.store, blobs, quick=True).missing == [str(pack)]


def test_local_store_keeps_loose_objects(dt: Any, embedded_only: None, tmp_path: Path) -> None:
    root = _tree(tmp_path / "many", 40)
    v1 = cd.add(root, name="many", tracker=dt)
    manifest = _manifest(dt, v1)
    assert all(e.pack is None for e in manifest.entries)
    assert json.loads(dt.blobs.read_bytes(Digest.parse(v1.digest)))["version"] == 1
    assert _files(cd.get("many@1", tmp_path / "out", tracker=dt)) == _files(root)


@pytest.mark.s3
def test_packed_data_set_as_pipeline_input_keeps_its_packs(s3_tracker: Any, tmp_path: Path) -> None:
    """The pipeline input manifest re-roots a data set's entries under content/: packed
    entries keep their pack and offset, so a step's checkout gets the files."""
    from conveyor.pipelines._datasets import resolve

    root = _tree(tmp_path / "many", 30)
    cd.add(root, name="many", tracker=s3_tracker)
    _, output = resolve(s3_tracker, "many@1")
    out = s3_tracker.blobs.get_tree(Digest.parse(output["digest"]), tmp_path / "step")
    assert _files(out / "content") == _files(root)


def test_remote_mode_packs_small_files_through_the_server(dt: Any, mode: str, tmp_path: Path) -> None:
    """Through the server (remote mode) small files travel in packs too: a few uploads instead
    of one per file; a pack is served only as part of a version naming it, and a get unpacks
    and verifies every file; one changed file uploads one object and a manifest."""
    if mode != "remote":
        pytest.skip("the server's HTTP backend: remote mode only")
    from conveyor.data._context import blobs_for

    server_blobs = dt.server_tracker.blobs
    root = _tree(tmp_path / "many", 60)
    v1 = cd.add(root, name="many", tracker=dt)
    manifest = blobs_for(dt, "many", 1).read_manifest(Digest.parse(v1.digest))
    packs = {e.pack for e in manifest.entries if e.pack is not None}
    assert packs and all(e.pack is not None for e in manifest.entries)
    stored = set(server_blobs.iter_digests())
    assert stored == {Digest.parse(v1.digest), *packs}  # 60 files: a manifest and its pack(s)
    assert _files(cd.get("many@1", tmp_path / "out", tracker=dt)) == _files(root)

    (root / "d0" / "f0000.bin").write_bytes(b"changed")
    v2 = cd.add(root, name="many", tracker=dt)
    assert v2.version == 2
    assert len(set(server_blobs.iter_digests()) - stored) == 2  # the changed file and the manifest
    assert _files(cd.get("many@2", tmp_path / "out2", tracker=dt)) == _files(root)
