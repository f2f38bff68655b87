"""``conveyor doctor --quick`` without Typer, Click, SQLAlchemy or s3fs (the entry point's fast path).

``doctor --quick`` over a few thousand objects is a handful of round trips; what it cost
was start-up: importing SQLAlchemy (and every table of the metadata store), s3fs and
aiobotocore, and creating an aiobotocore client. Here, with a SQLite metadata store, the
referenced digests are read with the standard library's ``sqlite3`` (read-only, the very
queries SQLAlchemy sends, pinned by ``tests/cli/test_doctor_quick.py`` against
``DIGEST_COLUMNS``; PostgreSQL through the metadata store, SQLAlchemy and all), and an S3
artifact store is listed through botocore alone
(:mod:`conveyor.blobs._s3lite`). The comparison itself is :mod:`conveyor.blobs._references`,
the code the full command runs, and :func:`render` prints the report for both.

:func:`answer` returns None — and the full CLI answers instead, its way — for any store
it does not handle (another database, another schema revision, a missing file) and any error.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from conveyor.blobs import BlobStore
    from conveyor.blobs._references import DoctorReport

__all__ = ["answer", "quick_report", "render", "sqlite_references"]

#: The schema these queries were written for (``conveyor.store._store.HEAD_REVISION``):
#: a database at any other revision goes to the full path.
SCHEMA_REVISION: Final = "0011"
#: ``Store.referenced_digests``'s queries as SQLAlchemy compiles them for SQLite, one per
#: ``DIGEST_COLUMNS`` entry: (digest, 1 when it names a manifest).
QUERIES: Final = (
    "SELECT DISTINCT artifacts.digest, CASE WHEN artifacts.is_dir THEN 1 ELSE 0 END AS anon_1 "
    "FROM artifacts WHERE artifacts.digest IS NOT NULL",
    "SELECT DISTINCT dataset_versions.digest, CASE WHEN (dataset_versions.kind = 'folder') THEN 1 ELSE 0 END "
    "AS anon_1 FROM dataset_versions WHERE dataset_versions.digest IS NOT NULL",
    "SELECT DISTINCT step_outputs.digest, 1 AS anon_1 FROM step_outputs WHERE step_outputs.digest IS NOT NULL",
    "SELECT DISTINCT model_versions.digest, CASE WHEN model_versions.is_dir THEN 1 ELSE 0 END AS anon_1 "
    "FROM model_versions WHERE model_versions.digest IS NOT NULL",
    "SELECT DISTINCT monitor_references.digest, 0 AS anon_1 FROM monitor_references "
    "WHERE monitor_references.digest IS NOT NULL",
    "SELECT DISTINCT monitor_evaluations.report_digest, 0 AS anon_1 FROM monitor_evaluations "
    "WHERE monitor_evaluations.report_digest IS NOT NULL",
    "SELECT DISTINCT runs.packages_digest, 0 AS anon_1 FROM runs WHERE runs.packages_digest IS NOT NULL",
    "SELECT DISTINCT serving_log_files.digest, 0 AS anon_1 FROM serving_log_files "
    "WHERE serving_log_files.digest IS NOT NULL",
)
#: ``conveyor.cli._common.EXIT_PROBLEMS``: doctor found problems.
EXIT_PROBLEMS: Final = 1
#: ``conveyor.store._maintenance.LEFTOVER_AGE``: incomplete writes older than this are leftovers.
LEFTOVER_AGE: Final = 3600.0


def _sqlite_path(metadata_url: str) -> str | None:
    """The file of a ``sqlite:///`` URL (as ``conveyor.data._status`` reads it), else None."""
    prefix = "sqlite:///"
    if not metadata_url.startswith(prefix) or metadata_url == "sqlite:///:memory:":
        return None
    return metadata_url[len(prefix):].split("?", 1)[0]


def sqlite_references(db: str) -> dict[str, bool] | None:
    """Every digest the metadata references → whether it names a manifest (as
    ``Store.referenced_digests``), or None when this database is not one to read here."""
    if not os.path.isfile(db):
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        if row is None or row[0] != SCHEMA_REVISION:
            return None
        out: dict[str, bool] = {}
        with conn:  # one read transaction: the queries see one state
            conn.execute("BEGIN")
            for query in QUERIES:
                for digest, is_manifest in conn.execute(query):
                    out[digest] = out.get(digest, False) or bool(is_manifest)
        return out
    except sqlite3.Error:
        return None  # locked, another schema: the full path answers
    finally:
        conn.close()


def _store_references(settings: Any) -> dict[str, bool]:
    """The references through the metadata store (SQLAlchemy): PostgreSQL. Opening it checks
    its schema as the full command does; an error sends the command to the full path."""
    from conveyor.store import Store

    store = Store.from_settings(settings)
    try:
        with store.read() as conn:
            return store.referenced_digests(conn)
    finally:
        store.close()


def _blobs(settings: Any) -> BlobStore | None:
    from conveyor.blobs import BlobStore

    url = str(settings.artifacts_url)
    if not url.startswith("s3://"):
        return None if "://" in url and not url.startswith("file://") else BlobStore.open(url)
    from conveyor.blobs._s3lite import open_reader

    store = settings.store
    return BlobStore(open_reader(
        url, store.s3_endpoint_url, connect_timeout=store.s3_connect_timeout, read_timeout=store.s3_read_timeout,
        max_attempts=store.s3_max_attempts, concurrency=store.s3_max_concurrency,
    ))


def quick_report(settings: Any, *, console: Any = None) -> DoctorReport | None:
    """``conveyor.store.doctor(..., quick=True)``'s report, or None when this path cannot tell.

    With a rich ``console`` (text output), the full command's progress bar is shown on it,
    the same rich ``Progress``: on a terminal a transient bar, elsewhere what rich prints
    for one (a blank line); with none (``--json``), nothing."""
    url = str(settings.metadata_url)
    db = _sqlite_path(url)
    if db is None and not url.startswith("postgresql"):
        return None
    blobs = _blobs(settings)
    if blobs is None:
        return None
    from conveyor.blobs._references import DoctorReport, check, expand

    if db is not None and not os.path.isfile(db):
        return None  # no metadata store: the full command says so
    pool = ThreadPoolExecutor(max_workers=2)
    answered = False
    try:
        listing, leftovers = pool.submit(blobs.sizes), pool.submit(blobs.leftovers, LEFTOVER_AGE)
        roots = sqlite_references(db) if db is not None else _store_references(settings)
        if roots is None:
            return None
        report = DoctorReport(quick=True)
        with _progress(console) as update:
            stored = listing.result()
            refs = expand(blobs, roots, stored=stored)
            check(report, blobs, refs, stored, quick=True, progress=update)
        report.leftover_files, report.leftover_bytes = leftovers.result()
        answered = True
        return report
    finally:
        # Handing over to the full command: do not wait for listings it will redo.
        pool.shutdown(wait=answered, cancel_futures=True)


class _progress:
    """The full command's transient progress bar on ``console`` (none without one: ``--json``)."""

    def __init__(self, console: Any) -> None:
        self.bar: Any = None
        if console is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("checking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                console=console, transient=True)

    def __enter__(self) -> Any:
        if self.bar is None:
            return None
        self.bar.__enter__()
        task = self.bar.add_task("verify", total=None)
        return lambda i, n: self.bar.update(task, completed=i, total=n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def render(report: DoctorReport, *, quick: bool, as_json: bool, console: Any = None) -> None:
    """Print the report as ``conveyor doctor`` does: a table and a verdict (on ``console``,
    a rich ``Console``; a new one by default), or JSON."""
    if as_json:
        data = report.__dict__ | {"healthy": report.healthy}
        sys.stdout.write(json.dumps(data, indent=2, default=str, allow_nan=True) + "\n")
        return
    from rich.markup import escape
    from rich.table import Table

    if console is None:
        from rich.console import Console

        console = Console()

    def listed(items: list[str], color: str) -> str:
        if not items:
            return "[green]none[/]"
        shown = "\n".join(escape(i) for i in items[:20]) + (f"\n… and {len(items) - 20} more" if len(items) > 20 else "")
        return f"[{color}]{shown}[/]"

    table = Table(title="conveyor doctor" + (" (quick: listings, sizes)" if quick else ""))
    table.add_column("check")
    table.add_column("result")
    table.add_row("objects checked" if quick else "objects verified", str(report.checked))
    table.add_row("missing", listed(report.missing, "red"))
    table.add_row("corrupt (size mismatch)" if quick else "corrupt (digest mismatch)", listed(report.corrupt, "red"))
    table.add_row("unreadable manifests (gc refuses to run)", listed(report.unreadable_manifests, "red"))
    table.add_row("bad references", listed(report.bad_references, "red"))
    leftovers = (
        f"[red]{report.leftover_files} file(s), {report.leftover_bytes / 1e6:.1f} MB (run `conveyor gc`)[/]"
        if report.leftover_files else "[green]none[/]"
    )
    table.add_row("leftovers of interrupted writes (> 1 h old)", leftovers)
    table.add_row("orphans (run `conveyor gc`)", listed(report.orphans, "yellow"))
    console.print(table)
    console.print("[green]healthy[/]" if report.healthy else "[bold red]problems found[/]")


def answer(args: list[str]) -> int | None:
    """For ``args`` after ``doctor``: print the quick report and return the exit code, or
    return None having printed nothing (then the full CLI answers)."""
    if "--quick" not in args or any(a not in ("--quick", "--json") for a in args):
        return None
    as_json = "--json" in args
    try:
        from conveyor.settings import Settings

        console = None
        if not as_json:
            from rich.console import Console

            console = Console()
        report = quick_report(Settings.load(), console=console)
    except Exception:  # noqa: BLE001 - any problem is reported by the full CLI, its way
        return None
    if report is None:
        return None
    render(report, quick=True, as_json=as_json, console=console)
    return 0 if report.healthy else EXIT_PROBLEMS
