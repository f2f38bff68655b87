"""Reference summaries stored once in the artifact store, linked to their data set version.

The key is the data set reference (``data:/train@3``; an unversioned reference is
resolved to its newest version first, since versions are immutable and the summary of a
version never changes). The summary is a small ``.npz`` object; its digest is recorded in
``monitor_references`` so ``doctor``/``gc`` keep it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conveyor.monitoring._summary import Summary, summarize
from conveyor.store import MonitoringRepo

_repo = MonitoringRepo()


def resolve_reference_key(key: str, tracker: Any) -> str:
    """``data:/train`` → ``data:/train@<newest>``; other keys are returned unchanged."""
    if key.startswith("data:/") and "@" not in key:
        from conveyor.data import get_version

        return get_version(key, tracker=tracker).ref
    return key


def reference_summary(
    tracker: Any,
    key: str,
    *,
    load: Callable[[str], Any] | None = None,
    columns: list[str] | None = None,
) -> Summary:
    """The stored summary of ``key``, made (and stored) the first time it is asked for.

    ``load(key)`` returns the table to summarise; by default ``conveyor.data.load``.

    Example::

        ref = reference_summary(tracker, "data:/train@3")   # reads the data set once, ever
    """
    from conveyor.blobs import Digest

    key = resolve_reference_key(key, tracker)
    digest = tracker.store.query(lambda conn: _repo.get_reference(conn, key), what=f"reading reference {key!r}")
    if digest is not None and tracker.blobs.exists(Digest.parse(digest)):
        return Summary.from_bytes(tracker.blobs.read_bytes(Digest.parse(digest)))
    source = load(key) if load is not None else _load_dataset(key, tracker)
    summary = summarize(source, columns=columns, label=key)
    store_summary(tracker, key, summary)
    return summary


def store_summary(tracker: Any, key: str, summary: Summary) -> str:
    """Put ``summary`` in the artifact store under ``key``; returns its digest."""
    blob = tracker.blobs.put_bytes(summary.to_bytes())
    tracker.store.transaction(
        lambda conn: _repo.put_reference(conn, key, str(blob.digest), summary.n_rows, len(summary.columns)),
        what="storing a reference summary")
    return str(blob.digest)


def _load_dataset(key: str, tracker: Any) -> Any:
    from conveyor.data import load

    return load(key, tracker=tracker)
