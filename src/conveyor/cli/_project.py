"""Project commands: init, db upgrade, doctor, gc, quickstart."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from conveyor.cli._common import EXIT_PROBLEMS, console, esc, handle_errors, print_json, settings
from conveyor.settings import CONFIG_FILE, Settings

db_app = typer.Typer(help="Metadata database schema.", no_args_is_help=True)

CONFIG_TEMPLATE = """\
# conveyor project settings. Each key can be overridden by an environment variable
# CONVEYOR_<SECTION>_<KEY>, e.g. CONVEYOR_STORE_METADATA_URL. See docs/settings.md.

[store]
# SQLite file by default; a team points this at PostgreSQL:
#   metadata_url = "postgresql+psycopg://user@db-host/conveyor"
metadata_url = "sqlite:///.conveyor/conveyor.db"
# A local folder by default; a team points this at S3-compatible storage:
#   artifacts_url = "s3://bucket/conveyor"   (and s3_endpoint_url for MinIO & co.)
artifacts_url = ".conveyor/artifacts"

[tracking]
flush_interval = 1.0   # seconds between background metric writes (the crash window)
"""


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(db_app, name="db")
    app.command("doctor")(doctor)
    app.command("gc")(gc)
    app.command("quickstart")(quickstart)


def _config_text(env_store: dict[str, str]) -> tuple[str, list[str]]:
    """conveyor.toml for a new project: the template, with the store settings the environment
    names written in (passwords left out: they stay in the environment or ~/.pgpass)."""
    import json

    from conveyor.store import mask_url

    text = CONFIG_TEMPLATE
    notes: list[str] = []
    lines = []
    for key in ("metadata_url", "artifacts_url", "s3_endpoint_url"):
        value = env_store.get(key)
        if not value:
            continue
        kept = _without_password(value) if key == "metadata_url" else value
        if kept != value:
            notes.append(
                f"the password in CONVEYOR_STORE_METADATA_URL ({mask_url(value)}) is not written to {CONFIG_FILE}; "
                "keep it in the environment (CONVEYOR_STORE_METADATA_URL, PGPASSWORD) or in ~/.pgpass"
            )
        lines.append(f"{key} = {json.dumps(kept)}   # from CONVEYOR_STORE_{key.upper()}")
    if lines:
        head, _, tail = text.partition("[store]\n")
        body = [line for line in tail.split("\n[tracking]")[0].splitlines()
                if not any(line.startswith(f"{k} =") for k in env_store)]
        text = head + "[store]\n" + "\n".join(body + lines) + "\n\n[tracking]" + tail.split("\n[tracking]", 1)[1]
    return text, notes


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    if parsed.password is None:
        return url
    return parsed._replace(password=None).render_as_string(hide_password=False)


@handle_errors
def init(
    path: Path = typer.Argument(Path("."), help="Project folder (created when missing)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing conveyor.toml."),
) -> None:
    """Write conveyor.toml, create .conveyor/ and initialise the stores."""
    import os

    from conveyor.blobs import BlobStore
    from conveyor.settings import ENV_PREFIX
    from conveyor.store import Store, mask_url

    path.mkdir(parents=True, exist_ok=True)
    config = path / CONFIG_FILE
    # What the environment says about the stores is what this project uses: record it, so
    # a later job without those variables does not silently log to a local file instead.
    env_store = {
        key: os.environ[f"{ENV_PREFIX}STORE_{key.upper()}"]
        for key in ("metadata_url", "artifacts_url", "s3_endpoint_url")
        if os.environ.get(f"{ENV_PREFIX}STORE_{key.upper()}")
    }
    if config.exists() and not force:
        console.print(f"{config} exists; keeping it (use --force to overwrite)", highlight=False)
    else:
        text, notes = _config_text(env_store)
        config.write_text(text, encoding="utf-8")
        console.print(f"wrote {config}", highlight=False)
        if env_store:
            names = ", ".join(f"CONVEYOR_STORE_{k.upper()}" for k in env_store)
            console.print(f"recorded the store settings of the environment ({names}) in {CONFIG_FILE}", highlight=False)
        for note in notes:
            console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    loaded = Settings.load(path)
    loaded.conveyor_dir.mkdir(parents=True, exist_ok=True)
    ignore = loaded.conveyor_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")
    store = Store.from_settings(loaded, create=True)
    store.close()
    BlobStore.from_settings(loaded).init()
    console.print(f"metadata:  {esc(mask_url(loaded.metadata_url))}", highlight=False)
    console.print(f"artifacts: {esc(loaded.artifacts_url)}", highlight=False)
    console.print("[green]ready[/]: `import conveyor` and start a run, or try `conveyor quickstart`")


@db_app.command("upgrade")
@handle_errors
def db_upgrade() -> None:
    """Migrate the metadata database to the schema this conveyor needs."""
    from conveyor.store import Store, head_revision

    loaded = settings()
    store = Store.connect(loaded.metadata_url, settings=loaded.store)
    try:
        before = store.current_revision()
        store.upgrade()
    finally:
        store.close()
    console.print(f"schema {before or 'empty'} → {head_revision()} at {escape(store.url)}", highlight=False)


@db_app.command("current")
@handle_errors
def db_current() -> None:
    """Print the schema revision of the metadata database and the one this conveyor needs."""
    from conveyor.store import Store, head_revision

    loaded = settings()
    store = Store.connect(loaded.metadata_url, settings=loaded.store)
    try:
        console.print(f"database: {store.current_revision() or 'empty'}  conveyor needs: {head_revision()}")
    finally:
        store.close()


def _open_stores() -> tuple[object, object]:
    from conveyor.blobs import BlobStore
    from conveyor.store import Store

    loaded = settings()
    return (
        Store.from_settings(loaded),
        BlobStore.from_settings(loaded),
    )


@handle_errors
def doctor(
    quick: bool = typer.Option(
        False, "--quick", help="Check existence and size from listings of the store; do not re-hash content."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the report as JSON (also: unreadable manifests, leftovers of interrupted writes)."
    ),
) -> None:
    """Verify that every referenced artifact exists and matches its digest; list orphans."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from concurrent.futures import ThreadPoolExecutor

    from conveyor._doctor_quick import render
    from conveyor.blobs import BlobStore

    loaded = settings()
    blobs = BlobStore.from_settings(loaded)
    with ThreadPoolExecutor(max_workers=2) as pool:
        # The store's listings are round trips on S3: start them before the metadata store
        # (SQLAlchemy's import, the connection) so the two overlap. (Not through
        # conveyor.store: importing it is what they should overlap.)
        listing, leftovers = pool.submit(blobs.sizes), pool.submit(blobs.leftovers)
        from conveyor.store import Store
        from conveyor.store import doctor as run_doctor

        store = Store.from_settings(loaded)
        with Progress(
            TextColumn("checking" if quick else "verifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True, disable=as_json,
        ) as bar:
            task = bar.add_task("verify", total=None)
            report = run_doctor(
                store, blobs, quick=quick, listing=listing, leftovers=leftovers,
                progress=lambda i, n: bar.update(task, completed=i, total=n),  # type: ignore[arg-type]
            )
    render(report, quick=quick, as_json=as_json, console=console)
    if not report.healthy:
        raise typer.Exit(EXIT_PROBLEMS)


@handle_errors
def gc(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be removed."),
    grace: float = typer.Option(
        3600.0, "--grace", help="Keep unreferenced objects younger than this many seconds (writes in flight)."
    ),
    skip_unreadable: bool = typer.Option(
        False, "--skip-unreadable",
        help="gc stops, removing nothing, when a referenced manifest cannot be read; this collects anyway "
        "(files only those manifests list are removed).",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Purge deleted runs and remove artifact objects that nothing references any more."""
    from conveyor.store import collect_garbage

    store, blobs = _open_stores()
    report = collect_garbage(
        store, blobs, dry_run=dry_run, grace_seconds=grace, skip_unreadable=skip_unreadable  # type: ignore[arg-type]
    )
    if as_json:
        print_json(report.__dict__)
        return
    verb = "would remove" if dry_run else "removed"
    console.print(f"runs purged: {len(report.purged_runs)}{' (dry run)' if dry_run else ''}")
    console.print(f"objects {verb}: {len(report.removed)} ({report.freed_bytes / 1e6:.1f} MB)")
    if report.kept_young:
        console.print(f"kept {report.kept_young} unreferenced objects younger than {grace:.0f}s")
    if report.skipped_unreadable:
        console.print(f"[yellow]skipped {len(report.skipped_unreadable)} unreadable manifest(s)[/]")


@handle_errors
def quickstart(
    folder: Path = typer.Option(Path("conveyor-quickstart"), "--folder", help="Where the demo project goes."),
) -> None:
    """Run the whole loop on bundled data in a new folder: train, track, compare."""
    from conveyor.quickstart import run

    run(folder, console=console)
