"""``doctor`` and ``gc``: the metadata store and the artifact store kept consistent.

References come from every column registered in ``DIGEST_COLUMNS`` (runs' artifacts and
package lists, data sets, model versions, logs); a referenced manifest references its
entries in turn, and, for files stored in a pack, the pack instead (the file is no object
of its own: the pack is live, and present means the pack is; ``doctor --quick`` also flags
a pack shorter than the files it holds, the full ``doctor`` re-hashes it).

A referenced manifest that cannot be read (missing, corrupt, over the size limit, not a
manifest, nested too deeply) hides which objects it keeps alive, so ``gc`` stops and names
it rather than collect files that may be in use, unless the caller explicitly skips such
manifests (``skip_unreadable``), and ``doctor`` reports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import delete

from conveyor.blobs import BlobStore, Digest
from conveyor.blobs._references import DoctorReport, References, check, expand  # noqa: F401 - re-exported
from conveyor.errors import CorruptObject
from conveyor.store._receipts import RECEIPT_TTL_MS, write_receipts
from conveyor.store._store import Store

Progress = Callable[[int, int], None]

#: Temp files / incomplete uploads older than this are leftovers of writes that died
#: (``BlobStore.leftovers``'s default, which ``conveyor doctor`` starts early).
LEFTOVER_AGE: Final = 3600.0


class UnreadableManifests(CorruptObject):
    """``gc`` refused to run: referenced manifests could not be read, so their files are unknown."""

    def __init__(self, digests: list[str]) -> None:
        shown = ", ".join(digests[:10]) + (f" and {len(digests) - 10} more" if len(digests) > 10 else "")
        super().__init__(
            f"gc stopped, nothing removed: {len(digests)} referenced manifest(s) cannot be read, so the files "
            f"they list are unknown and could be in use: {shown}",
            hint="restore them (conveyor doctor lists them), or run `conveyor gc --skip-unreadable` to collect "
            "anyway: files only those manifests reference are then removed",
        )
        self.digests = digests


@dataclass
class GcReport:
    purged_runs: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_young: int = 0
    freed_bytes: int = 0
    temp_files_removed: int = 0
    skipped_unreadable: list[str] = field(default_factory=list)
    dry_run: bool = False


def referenced(store: Store, blobs: BlobStore, *, problems: list[str] | None = None) -> set[str]:
    """Every digest reachable from the metadata, manifests expanded."""
    refs = references(store, blobs)
    if problems is not None:
        problems.extend(refs.bad)
    return refs.digests


def references(store: Store, blobs: BlobStore, *, stored: Iterable[Digest] | None = None) -> References:
    """Every reference in the metadata, its manifests read (unreadable ones listed).

    ``stored`` (the digests a listing just returned) answers which manifests exist without
    asking the store again."""
    with store.read() as conn:
        roots = store.referenced_digests(conn)
    return expand(blobs, roots, stored=stored)


def doctor(
    store: Store,
    blobs: BlobStore,
    *,
    quick: bool = False,
    progress: Progress | None = None,
    listing: Future[dict[Digest, tuple[int, float]]] | None = None,
    leftovers: Future[tuple[int, int]] | None = None,
) -> DoctorReport:
    """Check every referenced object; list orphans, unreadable manifests and leftovers.

    ``quick`` answers from one listing of the store: existence, and size where the manifest
    records one. The full check also re-hashes every referenced object (concurrently on S3).
    The listing and the leftovers run beside the metadata query; a caller may start them
    even earlier (``listing``/``leftovers``: futures of ``blobs.sizes()`` and
    ``blobs.leftovers(LEFTOVER_AGE)``, see :func:`start_listings`).
    """
    report = DoctorReport(quick=quick)
    pool = None
    if listing is None or leftovers is None:
        pool = ThreadPoolExecutor(max_workers=2)
        listing, leftovers = start_listings(blobs, pool)
    try:
        with store.read() as conn:
            roots = store.referenced_digests(conn)
        stored_listing = listing.result()  # one set of concurrent listings: existence and size
        refs = expand(blobs, roots, stored=stored_listing)
        check(report, blobs, refs, stored_listing, quick=quick, progress=progress)
        report.leftover_files, report.leftover_bytes = leftovers.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return report


def start_listings(
    blobs: BlobStore, pool: ThreadPoolExecutor
) -> tuple[Future[dict[Digest, tuple[int, float]]], Future[tuple[int, int]]]:
    """Start what ``doctor`` needs from the artifact store (its listing, its leftovers) on
    ``pool``: on S3 they are round trips that can overlap opening the metadata store."""
    return pool.submit(blobs.sizes), pool.submit(blobs.leftovers, LEFTOVER_AGE)


def collect_garbage(
    store: Store,
    blobs: BlobStore,
    *,
    dry_run: bool = False,
    grace_seconds: float = 3600.0,
    purge_deleted_runs: bool = True,
    skip_unreadable: bool = False,
) -> GcReport:
    """Purge runs marked deleted, then remove objects nothing references any more.

    Objects younger than ``grace_seconds`` are kept: a writer may have stored an object and
    not yet recorded the row that references it. A referenced manifest that cannot be read
    stops the collection (:class:`UnreadableManifests`, nothing removed, no run purged)
    unless ``skip_unreadable``.
    """
    report = GcReport(dry_run=dry_run)
    refs = references(store, blobs)
    if refs.unreadable and not skip_unreadable:
        raise UnreadableManifests(refs.unreadable)
    def purge(conn: Any) -> list[str]:  # deleting what is marked deleted: safe to run again
        ids = store.runs.deleted_ids(conn)
        if purge_deleted_runs and not dry_run:
            store.runs.purge(conn, ids)
        if not dry_run:  # receipts of exactly-once writes outlive their retries by far
            conn.execute(delete(write_receipts).where(write_receipts.c.at < int(time.time() * 1000) - RECEIPT_TTL_MS))
        return ids

    report.purged_runs = store.transaction(purge, what="purging deleted runs")
    refs = references(store, blobs) if not dry_run else refs
    if dry_run and report.purged_runs:
        refs = _refs_without(store, blobs, report.purged_runs)
    if refs.unreadable and not skip_unreadable:  # a manifest broke meanwhile
        raise UnreadableManifests(refs.unreadable)
    report.skipped_unreadable = refs.unreadable
    cutoff = time.time() - grace_seconds
    doomed: list[Digest] = []
    for digest, (size, mtime) in sorted(blobs.sizes().items(), key=lambda item: str(item[0])):
        if str(digest) in refs.digests:
            continue
        if grace_seconds > 0 and mtime > cutoff:
            report.kept_young += 1
            continue
        report.freed_bytes += size
        report.removed.append(str(digest))
        doomed.append(digest)
    if not dry_run:
        blobs.map(blobs.delete, doomed)
        report.temp_files_removed = blobs.clean_tmp(max(grace_seconds, 0.0))
    return report


def _refs_without(store: Store, blobs: BlobStore, run_ids: Iterable[str]) -> References:
    """What stays referenced once ``run_ids`` are purged (for ``gc --dry-run``): the purge runs
    in a transaction that is rolled back."""
    with store.engine.connect() as conn:
        trans = conn.begin()
        try:
            store.runs.purge(conn, list(run_ids))
            roots = store.referenced_digests(conn)
        finally:
            trans.rollback()
    return expand(blobs, roots)
