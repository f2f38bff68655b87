"""Fault recovery commands: ``conveyor sync`` (replay the spool) and ``conveyor runs gc-stale``
(end runs whose process died)."""

from __future__ import annotations

import dataclasses

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.cli._common import console, fmt_ms, handle_errors, print_json, settings


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)


def register_runs(runs_app: typer.Typer) -> None:
    """Adds ``gc-stale`` to the ``runs`` group (called by ``cli._tracking``)."""
    runs_app.command("gc-stale")(gc_stale)


def _tracker() -> object:
    from conveyor.blobs import BlobStore
    from conveyor.store import Store
    from conveyor.tracking import Tracker

    loaded = settings()
    store = Store.from_settings(loaded)
    blobs = BlobStore.open(loaded.artifacts_url, s3_endpoint_url=loaded.store.s3_endpoint_url)
    return Tracker(store, blobs, loaded.tracking, store_settings=loaded.store, spool_dir=loaded.spool_dir)


@handle_errors
def sync(as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Replay metric points and run ends spooled while the metadata store was unreachable."""
    tracker = _tracker()
    try:
        report = tracker.sync()  # type: ignore[attr-defined]
    finally:
        tracker.close()  # type: ignore[attr-defined]
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    console.print(
        f"replayed {report.files} spool file(s): {report.points_written} point(s) in "
        f"{report.batches_written} batch(es) written, {report.batches_skipped} already stored, "
        f"{report.runs_ended} run end(s)"
    )
    if report.skipped_locked:
        console.print(f"{report.skipped_locked} file(s) belong to live processes; they replay them themselves")


@handle_errors
def gc_stale(
    stale_after: float = typer.Option(
        None, "--stale-after", min=0.0,
        help="Seconds without a heartbeat that make a RUNNING run dead (default: the tracking.stale_after setting).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list them."),
    as_json: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
) -> None:
    """Mark RUNNING runs whose process died (no heartbeat for --stale-after seconds) as KILLED."""
    from conveyor.store import Store
    from conveyor.tracking._heartbeat import find_stale, mark_stale

    loaded = settings()
    after = loaded.tracking.stale_after if stale_after is None else stale_after
    store = Store.from_settings(loaded)
    try:
        found = find_stale(store, after) if dry_run else mark_stale(store, after)
    finally:
        store.close()
    if as_json:
        print_json([{"run_id": r.run_id, "last_seen": r.last_seen_ms, "marked": not dry_run} for r in found])
        return
    if not found:
        console.print(f"no RUNNING run without a heartbeat for {after:g} s")
        return
    table = Table(title=("would mark KILLED" if dry_run else "marked KILLED"))
    table.add_column("run")
    table.add_column("last sign of life")
    for r in found:
        table.add_row(escape(r.run_id), fmt_ms(r.last_seen_ms))
    console.print(table)
