"""Issue 9, High 5: ``gc`` never deletes the files of a folder whose manifest it cannot read,
and ``doctor`` reports unreadable manifests and leftovers instead of crashing or calling the
store healthy."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import conveyor
from conveyor.blobs import MANIFEST_MEDIA_TYPE, BlobStore
from conveyor.cli import app
from conveyor.entities import Artifact

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def logged(project: Path, tmp_path: Path) -> dict[str, object]:
    """A run with a 50-file folder artifact; returns the manifest's object path and the files."""
    folder = tmp_path / "src" / "images"
    folder.mkdir(parents=True)
    for i in range(50):
        (folder / f"img{i:02d}.bin").write_bytes(f"image {i}".encode() * 10)
    with conveyor.start_run(experiment="gc") as run:
        artifact = conveyor.log_artifacts(folder, "images")
    conveyor.tracking.set_tracker(None)
    store = BlobStore.open(project / ".conveyor" / "artifacts")
    digest = conveyor.blobs.Digest.parse(artifact.digest)
    entries = store.read_manifest(digest).entries
    return {"run": str(run.id), "store": store, "manifest": store._backend.local_path(digest), "entries": entries}


def _objects(store: BlobStore) -> int:
    return sum(1 for _ in store.iter_digests())


def _flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def test_gc_stops_on_a_corrupt_manifest(logged: dict[str, object]) -> None:
    store = logged["store"]
    assert isinstance(store, BlobStore)
    before = _objects(store)
    _flip_a_bit(logged["manifest"])  # type: ignore[arg-type]
    code, out = invoke("gc", "--grace", "0")
    assert code == 1, out
    assert "cannot be read" in out and "--skip-unreadable" in out
    assert _objects(store) == before  # nothing removed (main removed all 50 files)
    code, out = invoke("gc", "--grace", "0", "--dry-run")
    assert code == 1 and _objects(store) == before
    code, out = invoke("doctor", "--json")
    report = json.loads(out)
    assert code == 1 and len(report["unreadable_manifests"]) == 1 and not report["healthy"]
    # explicitly skipping is the user's decision: the files only that manifest listed go
    code, out = invoke("gc", "--grace", "0", "--skip-unreadable", "--json")
    assert code == 0, out
    result = json.loads(out)
    assert len(result["skipped_unreadable"]) == 1 and len(result["removed"]) == 50


def test_gc_stops_on_a_missing_manifest(logged: dict[str, object]) -> None:
    store = logged["store"]
    assert isinstance(store, BlobStore)
    Path(logged["manifest"]).unlink()  # type: ignore[arg-type]
    before = _objects(store)
    code, out = invoke("gc", "--grace", "0")
    assert code == 1 and _objects(store) == before, out


def test_doctor_and_gc_survive_a_deeply_nested_manifest(logged: dict[str, object], project: Path) -> None:
    """A referenced "manifest" whose digest matches but whose JSON nests 100,000 levels."""
    store = logged["store"]
    assert isinstance(store, BlobStore)
    deep = store.put_bytes(b"[" * 100_000 + b"]" * 100_000)
    tracker = conveyor.tracking.get_tracker()
    tracker._record(Artifact(str(logged["run"]), "deep", str(deep.digest), 200_000, MANIFEST_MEDIA_TYPE, True))
    conveyor.tracking.set_tracker(None)
    code, out = invoke("doctor", "--json")
    assert code == 1, out
    assert json.loads(out)["unreadable_manifests"] == [str(deep.digest)]
    code, out = invoke("gc", "--grace", "0")
    assert code == 1 and "cannot be read" in out


def test_doctor_reports_leftovers_of_interrupted_writes(logged: dict[str, object], project: Path) -> None:
    code, out = invoke("doctor", "--json")
    assert code == 0 and json.loads(out)["healthy"], out
    tmp = project / ".conveyor" / "artifacts" / ".tmp"
    stale = tmp / "put-deadbeef"
    stale.write_bytes(b"\0" * 3_000_000)
    old = time.time() - 7200
    os.utime(stale, (old, old))
    (tmp / "put-inflight").write_bytes(b"young")  # a write in progress is not a leftover
    code, out = invoke("doctor", "--json")
    report = json.loads(out)
    assert code == 1 and report["leftover_files"] == 1 and report["leftover_bytes"] == 3_000_000
    code, out = invoke("doctor")
    assert "3.0 MB" in out
    code, out = invoke("gc", "--json")
    assert code == 0 and json.loads(out)["temp_files_removed"] == 1
    assert not stale.exists() and (tmp / "put-inflight").exists()


def test_doctor_quick_checks_existence_and_size(logged: dict[str, object], project: Path) -> None:
    entries = logged["entries"]
    store = logged["store"]
    assert isinstance(store, BlobStore)
    victim = store._backend.local_path(entries[0].digest)  # type: ignore[index]
    assert victim is not None
    victim.chmod(0o644)
    victim.write_bytes(b"short")
    code, out = invoke("doctor", "--quick", "--json")
    report = json.loads(out)
    assert code == 1 and report["quick"] and report["corrupt"] == [str(entries[0].digest)]  # type: ignore[index]
    victim.unlink()
    code, out = invoke("doctor", "--quick", "--json")
    assert code == 1 and json.loads(out)["missing"] == [str(entries[0].digest)]  # type: ignore[index]
