"""``conveyor sync``: replay what was spooled while the metadata store was unreachable
(``conveyor runs gc-stale``, its companion, lives with the other ``runs`` commands)."""

from __future__ import annotations

import dataclasses

import typer

from conveyor.cli._common import console, handle_errors, print_json, settings


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)


def _tracker() -> object:
    from conveyor.blobs import BlobStore
    from conveyor.store import Store
    from conveyor.tracking import Tracker

    loaded = settings()
    if loaded.server.url is not None:  # remote mode: send the spooled batches to the server
        return Tracker.from_settings(loaded)
    store = Store.from_settings(loaded)
    blobs = BlobStore.open(loaded.artifacts_url, s3_endpoint_url=loaded.store.s3_endpoint_url)
    return Tracker(store, blobs, loaded.tracking, store_settings=loaded.store, spool_dir=loaded.spool_dir)


@handle_errors
def sync(as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Replay metric points, run ends and prediction-log rows spooled while the stores were unreachable."""
    from conveyor.tracking._heartbeat import find_stale

    from conveyor.serving._predlog import SPOOL_SUBDIR, replay_spool

    tracker = _tracker()
    try:
        report = tracker.sync()  # type: ignore[attr-defined]
        prediction_rows, stale = 0, []
        if settings().server.url is None:  # remote mode: the prediction log and heartbeats are the server's
            folder = tracker.spool_dir  # type: ignore[attr-defined]
            prediction_rows = replay_spool(tracker.store, tracker.blobs, folder / SPOOL_SUBDIR) if folder else 0  # type: ignore[attr-defined]
            stale = find_stale(tracker.store, settings().tracking.stale_after)  # type: ignore[attr-defined]
    finally:
        tracker.close()  # type: ignore[attr-defined]
    if as_json:
        print_json(dataclasses.asdict(report) | {"stale_runs": [r.run_id for r in stale],
                                                 "prediction_rows_written": prediction_rows})
        return
    console.print(
        f"replayed {report.files} spool file(s): {report.points_written} point(s) in "
        f"{report.batches_written} batch(es) written, {report.batches_skipped} already stored, "
        f"{report.runs_ended} run end(s)"
    )
    if prediction_rows:
        console.print(f"{prediction_rows} prediction-log row(s) kept while the stores were away are now stored")
    if report.skipped_locked:
        console.print(f"{report.skipped_locked} file(s) belong to live processes; they replay them themselves")
    if stale:
        console.print(f"{len(stale)} RUNNING run(s) without a heartbeat: `conveyor runs gc-stale` marks them KILLED")
