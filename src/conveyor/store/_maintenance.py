"""``doctor`` and ``gc``: the metadata store and the artifact store kept consistent.

References come from every column registered in ``DIGEST_COLUMNS`` (runs' artifacts and
package lists now; data sets, model versions and logs as later aggregates register
theirs); a referenced manifest references its entries in turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from conveyor.blobs import BlobStore, Digest
from conveyor.errors import ConveyorError
from conveyor.store._store import Store

Progress = Callable[[int, int], None]


@dataclass
class DoctorReport:
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    bad_references: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not (self.missing or self.corrupt or self.bad_references)


@dataclass
class GcReport:
    purged_runs: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_young: int = 0
    freed_bytes: int = 0
    temp_files_removed: int = 0
    dry_run: bool = False


def referenced(store: Store, blobs: BlobStore, *, problems: list[str] | None = None) -> set[str]:
    """Every digest reachable from the metadata, manifests expanded."""
    with store.read() as conn:
        roots = store.referenced_digests(conn)
    return expand(blobs, roots, problems)


def expand(blobs: BlobStore, roots: dict[str, bool], problems: list[str] | None = None) -> set[str]:
    """The roots plus the entries of those that are manifests (read only those)."""
    seen: set[str] = set()
    for text, is_manifest in roots.items():
        seen.add(text)
        try:
            digest = Digest.parse(text)
        except ConveyorError:
            if problems is not None:
                problems.append(text)
            continue
        if is_manifest and blobs.exists(digest):
            try:
                manifest = blobs.read_manifest(digest)
            except ConveyorError:
                continue  # corrupt: doctor's verify reports it
            seen.update(str(e.digest) for e in manifest.entries)
    return seen


def doctor(store: Store, blobs: BlobStore, *, progress: Progress | None = None) -> DoctorReport:
    """Check that every referenced object exists and matches its digest; list orphans."""
    report = DoctorReport()
    refs = referenced(store, blobs, problems=report.bad_references)
    valid = sorted(r for r in refs if r not in report.bad_references)
    for i, text in enumerate(valid, 1):
        digest = Digest.parse(text)
        if not blobs.exists(digest):
            report.missing.append(text)
        elif not blobs.verify(digest):
            report.corrupt.append(text)
        report.checked += 1
        if progress:
            progress(i, len(valid))
    report.orphans = sorted(str(d) for d in blobs.iter_digests() if str(d) not in refs)
    return report


def collect_garbage(
    store: Store,
    blobs: BlobStore,
    *,
    dry_run: bool = False,
    grace_seconds: float = 3600.0,
    purge_deleted_runs: bool = True,
) -> GcReport:
    """Purge runs marked deleted, then remove objects nothing references any more.

    Objects younger than ``grace_seconds`` are kept: a writer may have stored an object and
    not yet recorded the row that references it.
    """
    report = GcReport(dry_run=dry_run)
    with store.write() as conn:
        report.purged_runs = store.runs.deleted_ids(conn)
        if purge_deleted_runs and not dry_run:
            store.runs.purge(conn, report.purged_runs)
    refs = referenced(store, blobs)
    if dry_run and report.purged_runs:
        refs = _refs_without(store, blobs, report.purged_runs)
    cutoff = time.time() - grace_seconds
    for digest in list(blobs.iter_digests()):
        if str(digest) in refs:
            continue
        if grace_seconds > 0 and blobs.stat_mtime(digest) > cutoff:
            report.kept_young += 1
            continue
        report.freed_bytes += blobs.size(digest)
        report.removed.append(str(digest))
        if not dry_run:
            blobs.delete(digest)
    if not dry_run:
        report.temp_files_removed = blobs.clean_tmp(max(grace_seconds, 0.0))
    return report


def _refs_without(store: Store, blobs: BlobStore, run_ids: Iterable[str]) -> set[str]:
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
