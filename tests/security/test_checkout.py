"""Issue 9, Critical 2 and 3: a checkout never takes over the user's files.

Attacks: a logged folder holding ``.git/config`` or ``conveyor.toml`` checked out with the
default destination; a device, FIFO or symlink given as destination; a checked-out data
file edited in place (which used to edit the store through a hard link). Each goes through
the CLI and the Python API. The probe's passing case (manifest path traversal) is kept.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

import conveyor
import conveyor.data as cd
from conveyor.blobs import BlobStore, DestinationExists, Manifest, ManifestEntry
from conveyor.cli import app
from conveyor.errors import InvalidInput, UnsafePath

runner = CliRunner()

GIT_CONFIG = b"[core]\n\trepositoryformatversion = 0\n"
HOSTILE_GIT_CONFIG = b"[core]\n\tfsmonitor = touch /tmp/conveyor-pwned\n"
PROJECT_TOML = "[tracking]\nflush_interval = 0.05\n"


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _log_folder(files: dict[str, bytes], tmp_path: Path, name: str = "payload") -> str:
    folder = tmp_path / "logged" / name
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    with conveyor.start_run(experiment="attack") as run:
        conveyor.log_artifacts(folder, name)
    conveyor.tracking.set_tracker(None)
    return str(run.id)


@pytest.fixture
def dt(tracker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The tracker, with the working directory in a fresh folder (data's stat cache lives there)."""
    from conveyor.data._context import reset_defaults

    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    yield tracker
    reset_defaults()


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


@pytest.fixture
def git_project(project: Path) -> Path:
    (project / ".git").mkdir()
    (project / ".git" / "config").write_bytes(GIT_CONFIG)
    return project


def test_artifacts_get_refuses_a_folder_holding_git_config(git_project: Path, tmp_path: Path) -> None:
    run = _log_folder({".git/config": HOSTILE_GIT_CONFIG, "model.bin": b"weights"}, tmp_path)
    for extra in ((), ("--dest", "."), ("--dest", ".", "--force")):
        code, out = invoke("artifacts", "get", run, "payload", *extra)
        assert code == 2, out
        assert ".git" in out
        assert (git_project / ".git" / "config").read_bytes() == GIT_CONFIG
    assert not (git_project / "model.bin").exists()  # checked before anything was written
    assert not (git_project / "payload" / "model.bin").exists()


def test_artifacts_get_defaults_to_a_new_folder_and_never_overwrites(project: Path, tmp_path: Path) -> None:
    run = _log_folder({"conveyor.toml": b"[store]\nartifacts_url = 's3://attacker/x'\n", "notes.txt": b"n"}, tmp_path)
    code, out = invoke("artifacts", "get", run, "payload")
    assert code == 0, out
    assert (project / "conveyor.toml").read_text() == PROJECT_TOML  # the project's file is untouched
    assert (project / "payload" / "conveyor.toml").read_bytes().startswith(b"[store]")
    # an explicit destination over the project: refused, the project file kept
    code, out = invoke("artifacts", "get", run, "payload", "--dest", ".")
    assert code == 2 and "--force" in out
    assert (project / "conveyor.toml").read_text() == PROJECT_TOML
    assert not (project / "notes.txt").exists()  # all-or-nothing: checked before writing
    # getting the same thing again is fine: identical files are left as they are
    code, out = invoke("artifacts", "get", run, "payload")
    assert code == 0, out
    # --force is the user's explicit choice
    code, out = invoke("artifacts", "get", run, "payload", "--dest", ".", "--force")
    assert code == 0 and (project / "conveyor.toml").read_bytes().startswith(b"[store]")


def test_artifacts_get_of_a_file_defaults_to_its_name(project: Path) -> None:
    with conveyor.start_run(experiment="attack") as run:
        conveyor.log_text("hello", "model/conveyor-model.json")
    conveyor.tracking.set_tracker(None)
    code, out = invoke("artifacts", "get", str(run.id), "model/conveyor-model.json")
    assert code == 0, out
    assert (project / "conveyor-model.json").read_text() == "hello"


def _special_destinations(tmp_path: Path) -> list[Path]:
    fifo = tmp_path / "special" / "fifo"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    link = tmp_path / "special" / "link"
    (tmp_path / "special" / "elsewhere").write_bytes(b"keep")
    link.symlink_to(tmp_path / "special" / "elsewhere")
    found = [fifo, link]
    try:  # a character device like /dev/full, made in tmp so a failure cannot break the machine
        device = tmp_path / "special" / "full"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        found.append(device)
    except (PermissionError, OSError):
        pass
    return found


def test_non_regular_destinations_are_refused(project: Path, tmp_path: Path) -> None:
    with conveyor.start_run(experiment="attack") as run:
        conveyor.log_text("payload", "file.txt")
    conveyor.tracking.set_tracker(None)
    source = tmp_path / "data.txt"
    source.write_text("data")
    code, out = invoke("data", "add", str(source), "--name", "d")
    assert code == 0, out
    for dest in _special_destinations(tmp_path):
        before = os.lstat(dest)
        for args in (("artifacts", "get", str(run.id), "file.txt", "--dest", str(dest)),
                     ("data", "get", "d@1", str(dest)),
                     ("artifacts", "get", str(run.id), "file.txt", "--dest", str(dest), "--force"),
                     ("data", "get", "d@1", str(dest), "--force")):
            code, out = invoke(*args)
            assert code == 2, (dest, out)
            after = os.lstat(dest)
            assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino), dest
    assert (tmp_path / "special" / "elsewhere").read_bytes() == b"keep"


def test_python_api_obeys_the_same_rules(tracker: Any, tmp_path: Path) -> None:
    folder = tmp_path / "logged"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / ".GIT").mkdir()  # case-insensitive: .GIT is .git on macOS and Windows
    (folder / "sub" / ".GIT" / "config").write_bytes(HOSTILE_GIT_CONFIG)
    run = tracker.create_run("api")
    tracker.log_artifacts(run.id, folder, "payload")
    with pytest.raises(UnsafePath, match=".git"):
        tracker.download_artifact(run.id, "payload", tmp_path / "out")
    assert not (tmp_path / "out" / "sub").exists()
    # a destination inside a .git folder is refused too
    tracker.log_bytes(run.id, b"x", "hooks/post-checkout")
    (tmp_path / "repo" / ".git" / "hooks").mkdir(parents=True)
    with pytest.raises(UnsafePath):
        tracker.download_artifact(run.id, "hooks/post-checkout", tmp_path / "repo" / ".git" / "hooks")
    assert not (tmp_path / "repo" / ".git" / "hooks" / "post-checkout").exists()
    # an existing file with other content
    tracker.log_bytes(run.id, b"new", "model.bin")
    (tmp_path / "model.bin").write_bytes(b"mine")
    with pytest.raises(DestinationExists) as caught:
        tracker.download_artifact(run.id, "model.bin", tmp_path)
    assert isinstance(caught.value, InvalidInput) and (tmp_path / "model.bin").read_bytes() == b"mine"
    assert tracker.download_artifact(run.id, "model.bin", tmp_path, force=True).read_bytes() == b"new"


def test_editing_a_checked_out_file_never_changes_the_store(dt: Any, tmp_path: Path) -> None:
    """Critical 3: data get used to hard-link the objects; an in-place edit edited the store."""
    root = make_tree(tmp_path / "imgs", {"a.bin": b"original a", "deep/b.bin": b"original b"})
    version = cd.add(root, name="imgs", tracker=dt)
    out = cd.get("imgs@1", tmp_path / "checkout", tracker=dt)
    victim = out / "a.bin"
    victim.chmod(0o644)  # what an editor (or root) does to a read-only file
    with open(victim, "r+b") as handle:  # in place, keeping the inode
        handle.write(b"EDITED")
    again = cd.get("imgs@1", tmp_path / "again", tracker=dt)
    assert (again / "a.bin").read_bytes() == b"original a"
    manifest = dt.blobs.read_manifest(conveyor.blobs.Digest.parse(version.digest))
    assert all(dt.blobs.verify(e.digest) for e in manifest.entries)
    # the second get over the edited checkout refuses rather than silently "repairing" it
    with pytest.raises(DestinationExists):
        cd.get("imgs@1", out, tracker=dt)
    assert victim.read_bytes().startswith(b"EDITED")


def test_data_load_copies_are_read_only_and_independent(dt: Any, tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"x.txt": b"x"})
    cd.add(root, name="t", tracker=dt)
    loaded = cd.load("t@1", tracker=dt)
    st = (loaded / "x.txt").stat()
    assert st.st_nlink == 1 and not st.st_mode & 0o222


def test_manifest_traversal_is_refused_before_writing(tmp_path: Path) -> None:
    """Kept from the probe: manifests with ``..``, absolute or backslash paths never load."""
    store = BlobStore.open(tmp_path / "store")
    store.init()
    blob = store.put_bytes(b"x")
    for bad in ("../escape", "/etc/passwd", "a\\..\\b", "C:/x", "a/./b"):
        with pytest.raises(UnsafePath):
            Manifest.of([ManifestEntry(bad, blob.digest, 1)])
        doc = Manifest.of([ManifestEntry("ok", blob.digest, 1)]).to_bytes().replace(b'"ok"', f'"{bad}"'.encode().replace(b"\\", b"\\\\"))
        hostile = store.put_bytes(doc)
        with pytest.raises(UnsafePath):
            store.get_tree(hostile.digest, tmp_path / "out")
    assert not (tmp_path / "escape").exists()
