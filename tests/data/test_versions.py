from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import conveyor.data as cd
from conveyor.blobs import Digest
from conveyor.data._scan import store_folder
from conveyor.data._statcache import StatCache
from conveyor.errors import NotFound


def _objects(tracker: Any) -> set[Digest]:
    return set(tracker.server_tracker.blobs.iter_digests())  # the server's store in remote mode


def test_file_versions_and_unchanged(dt: Any, tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"one")
    first = cd.add(path, name="weights", tracker=dt)
    assert (first.ref, first.kind, first.created, first.size) == ("data:/weights@1", "file", True, 3)
    again = cd.add(path, name="weights", tracker=dt)
    assert (again.version, again.created) == (1, False)
    path.write_bytes(b"two!")
    second = cd.add(path, name="weights", tracker=dt)
    assert (second.version, second.created, second.size) == (2, True, 4)
    assert [v.version for v in cd.versions("weights", tracker=dt)] == [1, 2]
    assert cd.get_version("weights", tracker=dt).version == 2
    assert cd.get_version("data:/weights@1", tracker=dt).digest == first.digest


def test_folder_dedup_one_changed_file_stores_one_object(dt: Any, make_tree: Callable[..., Path]) -> None:
    root = make_tree("imgs", {f"f{i:03}.txt": f"content {i}" for i in range(50)} | {"sub/x.txt": "x"})
    v1 = cd.add(root, name="imgs", tracker=dt)
    assert (v1.kind, v1.file_count) == ("folder", 51)
    before = _objects(dt)
    (root / "f007.txt").write_text("changed")
    v2 = cd.add(root, name="imgs", tracker=dt)
    assert v2.version == 2
    assert len(_objects(dt) - before) == 2  # the changed file and the new manifest
    diff = cd.diff("imgs@1", "imgs@2", tracker=dt)
    assert diff.changed == ("f007.txt",) and diff.added == () and diff.removed == ()


def test_stat_cache_rereads_nothing_unchanged(embedded_only: None, dt: Any, make_tree: Callable[..., Path], tmp_path: Path) -> None:
    root = make_tree("many", {f"d{i % 3}/f{i}.bin": os.urandom(64) for i in range(30)})
    cache = StatCache(tmp_path / "cache.db")
    first = store_folder(dt.blobs, root, cache, workers=4)
    assert first.hashed == 30
    assert store_folder(dt.blobs, root, cache, workers=4).hashed == 0
    (root / "d1" / "f1.bin").write_bytes(b"new")
    third = store_folder(dt.blobs, root, cache, workers=4)
    assert third.hashed == 1 and third.digest != first.digest


def test_stat_cache_recovers_objects_collected_since(embedded_only: None, dt: Any, make_tree: Callable[..., Path], tmp_path: Path) -> None:
    root = make_tree("gc", {"a": "1", "b": "2"})
    cache = StatCache(tmp_path / "cache.db")
    first = store_folder(dt.blobs, root, cache, workers=2)
    for digest in list(dt.blobs.iter_digests()):
        dt.blobs.delete(digest)  # as if gc had run
    again = store_folder(dt.blobs, root, cache, workers=2)
    assert again.digest == first.digest and again.hashed == 2
    assert all(dt.blobs.exists(e.digest) for e in dt.blobs.read_manifest(again.digest).entries)


def test_corrupt_stat_cache_only_costs_hashing(embedded_only: None, dt: Any, make_tree: Callable[..., Path], tmp_path: Path) -> None:
    root = make_tree("c", {"a": "1"})
    path = tmp_path / "cache.db"
    path.write_bytes(b"not a database at all" * 100)
    assert store_folder(dt.blobs, root, StatCache(path), workers=1).hashed == 1


def test_table_and_dataframe(dt: Any, write_csv: Callable[[str, str], Path]) -> None:
    import pandas as pd

    path = write_csv("t.csv", "age,color\n30,red\n40,blue\n,red\n")
    v = cd.add(path, name="people", tracker=dt)
    assert (v.kind, v.format) == ("table", "csv")
    assert v.profile is not None
    age = v.profile["columns"]["age"]
    assert (v.profile["rows"], age["type"], age["nulls"], age["min"], age["max"]) == (3, "float", 1, 30.0, 40.0)
    assert v.profile["columns"]["color"]["categories"] == ["blue", "red"]
    frame = cd.load("people@1", tracker=dt)
    assert list(frame.columns) == ["age", "color"] and len(frame) == 3

    df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    from_frame = cd.add(df, name="frame", tracker=dt)
    assert (from_frame.kind, from_frame.format, from_frame.profile["rows"]) == ("table", "parquet", 3)
    assert cd.add(df, name="frame", tracker=dt).created is False
    pd.testing.assert_frame_equal(cd.load("frame", tracker=dt), df)


def test_get_writes_independent_copies(dt: Any, make_tree: Callable[..., Path], tmp_path: Path) -> None:
    root = make_tree("g", {"a.txt": "A", "deep/b.txt": "B"})
    cd.add(root, name="g", tracker=dt)
    out = cd.get("g@1", tmp_path / "out", tracker=dt)
    assert (out / "a.txt").read_text() == "A" and (out / "deep" / "b.txt").read_text() == "B"
    st = (out / "a.txt").stat()
    assert st.st_nlink == 1 and st.st_mode & stat.S_IWUSR  # the user's own file, not the object
    single = tmp_path / "one.txt"
    single.write_text("hello")
    cd.add(single, name="one", tracker=dt)
    (tmp_path / "into").mkdir()
    assert cd.get("one", tmp_path / "into", tracker=dt) == tmp_path / "into" / "one.txt"
    loaded = cd.load("g@1", tracker=dt)
    assert isinstance(loaded, Path) and (loaded / "deep" / "b.txt").read_text() == "B"


@pytest.mark.parametrize("ref", ["nope", "nope@2"])
def test_unknown_data_set(dt: Any, ref: str) -> None:
    with pytest.raises(NotFound) as info:
        cd.get_version(ref, tracker=dt)
    assert "data list" in str(info.value)  # the hint, in both modes


def test_unknown_version_names_the_range(dt: Any, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    cd.add(tmp_path / "f", name="f", tracker=dt)
    with pytest.raises(NotFound) as info:
        cd.get_version("f@7", tracker=dt)
    assert "f@7" in str(info.value) and "1..1" in str(info.value)  # name and range, in both modes


def test_missing_path(dt: Any, tmp_path: Path) -> None:
    with pytest.raises(NotFound) as info:
        cd.add(tmp_path / "does-not-exist", name="x", tracker=dt)
    assert "does-not-exist" in str(info.value)
    assert cd.list_datasets(tracker=dt) == []


def test_symlink_in_folder_is_refused(dt: Any, make_tree: Callable[..., Path]) -> None:
    from conveyor.errors import UnsafePath

    root = make_tree("links", {"a": "1"})
    (root / "evil").symlink_to("/etc/passwd")
    with pytest.raises(UnsafePath):
        cd.add(root, name="links", tracker=dt)


@pytest.mark.parametrize("bad_path", ["../escape.txt", "/etc/owned", "a/../../b", "a\\b"])
def test_unsafe_manifest_paths_are_refused_before_writing(dt: Any, tmp_path: Path, bad_path: str) -> None:
    """A hostile manifest (written by hand into the store) never writes outside DEST."""
    import json

    from conveyor.errors import InvalidInput
    from conveyor.store import DatasetRepo

    behind = dt.server_tracker  # written by hand behind the server in remote mode
    good = behind.blobs.put_bytes(b"payload")
    doc = {
        "media_type": "application/vnd.conveyor.manifest+json", "version": 1,
        "entries": sorted([{"path": "ok.txt", "digest": str(good.digest), "size": 7},
                           {"path": bad_path, "digest": str(good.digest), "size": 7}], key=lambda e: e["path"]),
    }
    manifest = behind.blobs.put_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
    repo = DatasetRepo()
    with behind.store.write() as conn:
        ds = repo.dataset_id(conn, "hostile", create_at=1)
        repo.insert(conn, ds, 1, {"digest": str(manifest.digest), "kind": "folder", "format": None, "size": 14,
                                  "file_count": 2, "source": "x", "profile": None, "created_at": 1, "run_id": None})
    dest = tmp_path / "dest" / "inner"
    with pytest.raises(InvalidInput):  # UnsafePath is an InvalidInput
        cd.get("hostile@1", dest, tracker=dt)
    assert not (tmp_path / "dest").exists() or not any((tmp_path / "dest").rglob("*.txt"))
    assert not (tmp_path / "escape.txt").exists()


def test_concurrent_adds_in_threads(dt: Any, tmp_path: Path) -> None:
    """Racing writers (real concurrent transactions on PostgreSQL) never corrupt versions."""
    files = []
    for i in range(4):
        path = tmp_path / f"c{i}.bin"
        path.write_bytes(f"content {i % 2}".encode())  # two distinct contents
        files.append(path)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(path: Path) -> None:
        try:
            results.append(cd.add(path, name="race", tracker=dt))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    found = cd.versions("race", tracker=dt)
    assert [v.version for v in found] == list(range(1, len(found) + 1))
    assert all(dt.server_tracker.blobs.exists(Digest.parse(v.digest)) for v in found)
    assert sum(r.created for r in results) == len(found)


_CHILD = """
import sys
import conveyor.data as cd
v = cd.add(sys.argv[1], name="shared")
print(v.version, v.created)
"""


def test_two_processes_add_the_same_name(project: Path) -> None:
    for i in range(2):
        folder = project / f"in{i}"
        folder.mkdir()
        for j in range(20):
            (folder / f"f{j}.txt").write_text(f"{i}-{j}")
    procs = [
        subprocess.Popen([sys.executable, "-c", _CHILD, f"in{i}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(o[0].split()[0] for o in outs) == ["1", "2"]
    for v in cd.versions("shared"):
        assert cd.diff(f"shared@{v.version}", f"shared@{v.version}").same_content
        out = cd.get(f"shared@{v.version}", project / f"out{v.version}")
        assert len(list(out.glob("*.txt"))) == 20


def test_orphan_manifest_with_collected_entries_is_not_trusted(
    embedded_only: None, dt: Any, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """A gc pass interrupted between entries and manifest must not yield a hollow version."""
    root = make_tree("orphan", {"a": "1", "b": "2"})
    cache = StatCache(tmp_path / "cache.db")
    stored = store_folder(dt.blobs, root, cache, workers=2)
    for entry in dt.blobs.read_manifest(stored.digest).entries:
        dt.blobs.delete(entry.digest)  # the manifest is left, its files are gone
    again = store_folder(dt.blobs, root, cache, workers=2)
    assert again.digest == stored.digest and again.hashed == 2
    assert all(dt.blobs.exists(e.digest) for e in dt.blobs.read_manifest(again.digest).entries)
