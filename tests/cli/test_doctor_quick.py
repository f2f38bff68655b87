"""``conveyor doctor --quick``'s fast path (``conveyor._doctor_quick``, issue 12): the same
text, JSON and exit code as the full CLI, on a local and an S3 store, healthy and broken,
without Typer, SQLAlchemy or s3fs; and the references it reads with ``sqlite3`` are the
ones ``Store.referenced_digests`` finds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import conveyor
import conveyor.data as cd
from conveyor._doctor_quick import EXIT_PROBLEMS, LEFTOVER_AGE, QUERIES, SCHEMA_REVISION, sqlite_references
from conveyor.blobs import BlobStore, Digest
from conveyor.blobs._digest import hash_bytes

pytestmark = pytest.mark.usefixtures("embedded_only")

_MODULES = ("typer", "click", "sqlalchemy", "s3fs", "aiobotocore", "fsspec")


def _run(project: Path, *args: str, fast: bool) -> subprocess.CompletedProcess[str]:
    """``conveyor ARGS`` in a fresh process: through the entry point (``fast``) or straight
    into the full CLI; stderr ends with the heavy modules that were imported."""
    call = "from conveyor._entry import main\n" if fast else "from conveyor.cli import main\n"
    script = (
        "import sys\n"
        f"sys.argv = ['conveyor', *{list(args)!r}]\n"
        + call
        + "try:\n    main()\nfinally:\n    sys.stdout.flush()\n"
        f"    print('MODULES', sorted(m for m in {_MODULES!r} if m in sys.modules), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["COLUMNS"] = "200"  # whole digests in the table
    return subprocess.run([sys.executable, "-c", script], cwd=project, env=env, capture_output=True, text=True,
                          timeout=120)


def _same_as_full_cli(project: Path, *, expect_fast: bool = True, loaded: str = "[]") -> list[str]:
    """Both outputs of both paths are equal; returns the fast text output's lines."""
    lines: list[str] = []
    for args in (("doctor", "--quick"), ("doctor", "--quick", "--json")):
        fast, full = _run(project, *args, fast=True), _run(project, *args, fast=False)
        assert "Traceback" not in fast.stderr + full.stderr, fast.stderr + full.stderr
        assert (fast.stdout, fast.returncode) == (full.stdout, full.returncode)
        if expect_fast:
            assert f"MODULES {loaded}" in fast.stderr, fast.stderr  # answered before Typer, SQLAlchemy, s3fs
        else:
            assert "'typer'" in fast.stderr, fast.stderr
        lines = lines or fast.stdout.splitlines()
    return lines


def _populate(project: Path) -> dict[str, Any]:
    """A run with a logged folder (loose objects), a data set (packed on S3) and an orphan."""
    files = project / "logged"
    files.mkdir()
    contents = {f"f{i}.bin": os.urandom(300 + i) for i in range(5)}
    for name, data in contents.items():
        (files / name).write_bytes(data)
    data = project / "data"
    for i in range(40):
        (data / f"d{i % 4}").mkdir(parents=True, exist_ok=True)
        (data / f"d{i % 4}" / f"{i}.bin").write_bytes(os.urandom(1000))
    with conveyor.start_run(name="logged"):
        conveyor.log_artifacts(str(files), "out")
    version = cd.add(data, name="images")
    tracker = conveyor.tracking.get_tracker()
    blobs: BlobStore = tracker.blobs
    orphan = blobs.put_bytes(b"nobody references me").digest
    manifest = blobs.read_manifest(Digest.parse(version.digest))
    packs = sorted({str(e.pack) for e in manifest.entries if e.pack is not None})
    conveyor.tracking.set_tracker(None)
    from conveyor.data._context import reset_defaults

    reset_defaults()
    return {"blobs": blobs, "loose": [hash_bytes(d) for d in contents.values()], "orphan": orphan, "packs": packs}


def _truncate(blobs: BlobStore, digest: Digest) -> None:
    data = blobs.read_bytes(digest)
    backend: Any = blobs._backend
    local = backend.local_path(digest)
    if local is not None:
        os.chmod(local, 0o644)
        local.write_bytes(data[:-10])
    else:
        backend.fs.pipe_file(backend._key(digest), data[:-10])


def _table(lines: list[str], row: str) -> str:
    return next(line for line in lines if row in line)


def test_local_store_healthy_then_missing_then_truncated(project: Path) -> None:
    world = _populate(project)
    lines = _same_as_full_cli(project)
    assert "healthy" in lines[-1] and str(world["orphan"]) in "\n".join(lines)

    world["blobs"].delete(world["loose"][0])
    lines = _same_as_full_cli(project)
    assert str(world["loose"][0]) in _table(lines, "missing") and lines[-1] == "problems found"

    _truncate(world["blobs"], world["loose"][1])
    lines = _same_as_full_cli(project)
    assert str(world["loose"][1]) in _table(lines, "corrupt (size mismatch)")


@pytest.mark.s3
def test_s3_store_healthy_then_missing_truncated_and_missing_pack(
    project: Path, s3_server: str, s3_bucket_url: str
) -> None:
    (project / "conveyor.toml").write_text(
        f'[store]\nartifacts_url = "{s3_bucket_url}/conveyor"\ns3_endpoint_url = "{s3_server}"\n'
        "[tracking]\nflush_interval = 0.05\n", encoding="utf-8")
    BlobStore.open(f"{s3_bucket_url}/conveyor", s3_endpoint_url=s3_server).init()
    world = _populate(project)
    assert world["packs"], "a data set of 40 small files is packed on S3"
    lines = _same_as_full_cli(project)
    assert lines[-1] == "healthy" and str(world["orphan"]) in "\n".join(lines)

    world["blobs"].delete(world["loose"][0])
    _truncate(world["blobs"], world["loose"][1])
    world["blobs"].delete(Digest.parse(world["packs"][0]))
    lines = _same_as_full_cli(project)
    text = "\n".join(lines)
    assert str(world["loose"][0]) in text and world["packs"][0] in text and str(world["loose"][1]) in text
    assert lines[-1] == "problems found"


@pytest.mark.postgres
def test_postgres_metadata_keeps_sqlalchemy_but_not_the_framework(project: Path, postgres_url: str) -> None:
    from conveyor.store import Store

    Store.open(postgres_url, create=True).close()
    (project / "conveyor.toml").write_text(
        f'[store]\nmetadata_url = "{postgres_url}"\n[tracking]\nflush_interval = 0.05\n', encoding="utf-8")
    world = _populate(project)
    lines = _same_as_full_cli(project, loaded="['sqlalchemy']")
    assert lines[-1] == "healthy"
    world["blobs"].delete(world["loose"][2])
    lines = _same_as_full_cli(project, loaded="['sqlalchemy']")
    assert str(world["loose"][2]) in _table(lines, "missing") and lines[-1] == "problems found"


def test_another_schema_revision_goes_to_the_full_cli(project: Path) -> None:
    import sqlite3

    _populate(project)
    db = project / ".conveyor" / "conveyor.db"
    assert sqlite_references(str(db)) is not None
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    assert sqlite_references(str(db)) is None
    fast = _run(project, "doctor", "--quick", fast=True)
    full = _run(project, "doctor", "--quick", fast=False)
    assert "'typer'" in fast.stderr and (fast.stdout, fast.returncode) == (full.stdout, full.returncode)


def test_the_fast_queries_are_the_stores_own(project: Path) -> None:
    """The SQL strings are what SQLAlchemy compiles ``Store.referenced_digests`` to, and they
    find the same references (a new ``register_digest_column`` or migration fails here:
    update ``conveyor._doctor_quick.QUERIES``/``SCHEMA_REVISION``)."""
    from sqlalchemy import case, literal, select
    from sqlalchemy.dialects import sqlite

    from conveyor.store import DIGEST_COLUMNS, Store
    from conveyor.store._store import HEAD_REVISION

    from conveyor.cli._common import EXIT_PROBLEMS as CLI_EXIT_PROBLEMS
    from conveyor.store._maintenance import LEFTOVER_AGE as STORE_LEFTOVER_AGE

    assert (SCHEMA_REVISION, LEFTOVER_AGE, EXIT_PROBLEMS) == (HEAD_REVISION, STORE_LEFTOVER_AGE, CLI_EXIT_PROBLEMS)
    compiled = set()
    for ref in DIGEST_COLUMNS:
        if ref.manifest is None or ref.manifest is False:
            flag: Any = literal(False)
        elif ref.manifest is True:
            flag = literal(True)
        else:
            flag = case((ref.manifest, literal(True)), else_=literal(False))
        query = select(ref.column, flag).where(ref.column.is_not(None)).distinct()
        text = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
        compiled.add(re.sub(r"\s+", " ", text).strip())
    assert compiled == set(QUERIES)

    _populate(project)
    store = Store.open(f"sqlite:///{project / '.conveyor' / 'conveyor.db'}")
    with store.read() as conn:
        expected = store.referenced_digests(conn)
    store.close()
    found = sqlite_references(str(project / ".conveyor" / "conveyor.db"))
    assert found == expected and any(expected.values()) and not all(expected.values())


def test_doctor_shows_progress_on_a_terminal(project: Path) -> None:
    """On a terminal both ``doctor`` (verifying) and the fast ``doctor --quick`` (checking)
    draw the progress bar (transient: erased when done)."""
    import pty

    _populate(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["TERM"] = "xterm"
    for args, label in ((["doctor"], "verifying"), (["doctor", "--quick"], "checking")):
        main, child = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "conveyor", *args], cwd=project, env=env,
                                stdin=child, stdout=child, stderr=child)
        os.close(child)
        out = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(timeout=120) == 0, out
        os.close(main)
        text = out.decode(errors="replace")
        assert label in text and "━" in text and "healthy" in text, text
