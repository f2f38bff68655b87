"""Who may *reference* a stored object by its digest without sending its bytes.

The artifact store is content-addressed, so several routes let a client name an object
that is already stored instead of uploading it again (a folder's manifest, the ``exists``
shortcut of multipart uploads, a data set version, a data set's "which are missing").
Knowing a digest is not the right to its bytes: digests show in listings, lineage and
manifests of resources other users may read. So, with authentication on, a caller may
reference a stored object only when

- the caller sent its bytes (any upload route that hashes the body records that, for a day:
  :func:`remember`), or
- the caller may read a resource that already references it: a run artifact (its own
  digest) in an experiment the caller may read, a data set version (its own digest) the
  caller may read, or — where a route names one — an object of the data set being
  written, the packages list of a readable run, a readable step output (:func:`held`'s
  ``extra``). Files inside a folder manifest count only where the route says so (the
  data set being written); elsewhere they are uploaded again.

Admins, and every caller when authentication is off, may reference anything. Everything
else must be uploaded (the store keeps one copy anyway: only bandwidth is spent).

The record of an upload is a ``write_receipts`` row (token: a hash of user and digest, no
result), so no new table is needed; ``conveyor gc`` prunes it after a day like any receipt.
Its token is a hash with a ``possession:`` prefix; every other writer of ``write_receipts``
hashes a client's key with its own prefix, and none may ever store a raw client key as a
token (that could forge a possession record).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import Request
from sqlalchemy import select

from conveyor.blobs import Digest
from conveyor.server.api import _deps
from conveyor.server.api._errors import ApiV1Error


def _restricted(request: Request) -> str | None:
    """The caller's name when the rule applies to them; None for admins and when authentication is off."""
    who = _deps.user(request)
    if who is None or getattr(who, "is_admin", False):
        return None
    return str(getattr(who, "name", "") or "anonymous")


def _token(user: str, digest: Digest | str) -> str:
    return hashlib.sha256(f"possession:{user}:{digest}".encode()).hexdigest()[:32]


def remember(request: Request, digests: Iterable[Digest | str]) -> None:
    """Record that the caller sent the bytes of ``digests`` (after they were hashed and stored)."""
    from conveyor.store import write_receipts

    user = _restricted(request)
    if user is None:
        return
    tokens = sorted({_token(user, d) for d in digests})
    if not tokens:
        return
    now = int(time.time() * 1000)

    def write(conn: Any) -> None:  # an upsert: a re-upload keeps the right for another day
        from conveyor.store._dialect import upsert

        conn.execute(upsert(conn, write_receipts, ["token"], ["at"]),
                     [{"token": t, "at": now, "result": None} for t in tokens])

    _deps.tracker(request).store.transaction(write, what="recording uploaded objects")


def held(request: Request, digests: Iterable[Digest], extra: Callable[[set[Digest]], set[str]] | None = None) -> set[Digest]:
    """Those of ``digests`` the caller may reference without uploading them (see the module
    docstring). ``extra(rest)`` lazily gives more of them the caller may read (e.g. a data set's)."""
    from conveyor.store import write_receipts
    from conveyor.store._artifacts import artifacts
    from conveyor.store._datasets import dataset_versions, datasets
    from conveyor.store._runs import runs

    wanted = set(digests)
    user = _restricted(request)
    if user is None or not wanted:
        return wanted
    by_token = {_token(user, d): d for d in wanted}
    store = _deps.tracker(request).store
    texts = sorted(str(d) for d in wanted)
    with store.read() as conn:
        found = {by_token[r.token] for r in conn.execute(
            select(write_receipts.c.token).where(write_receipts.c.token.in_(sorted(by_token))))}
        rest = [t for t in texts if Digest.parse(t) not in found]
        experiments: dict[str, set[str]] = {}
        sets: dict[str, set[str]] = {}
        if rest:
            rows = conn.execute(select(artifacts.c.digest, runs.c.experiment_id)
                                .join(runs, runs.c.id == artifacts.c.run_id)
                                .where(artifacts.c.digest.in_(rest), runs.c.deleted_at.is_(None)))
            for row in rows:
                experiments.setdefault(str(row.experiment_id), set()).add(row.digest)
            rows = conn.execute(select(dataset_versions.c.digest, datasets.c.name)
                                .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
                                .where(dataset_versions.c.digest.in_(rest)))
            for row in rows:
                sets.setdefault(str(row.name), set()).add(row.digest)
    for kind, holders in (("experiment", experiments), ("data", sets)):
        if holders:
            for holder in _deps.readable(request, kind, holders):  # type: ignore[arg-type]
                found.update(Digest.parse(d) for d in holders[holder])
    if extra is not None and wanted - found:
        also = extra(wanted - found)
        found.update(d for d in wanted if str(d) in also)
    return found


def require(request: Request, named: dict[str, Digest], field: str,
            extra: Callable[[set[Digest]], set[str]] | None = None) -> None:
    """A 403 naming the first of ``named`` (label → digest) the caller may not reference."""
    ok = held(request, named.values(), extra)
    for label, digest in named.items():
        if digest not in ok:
            raise ApiV1Error("FORBIDDEN", f"{label}: object {digest} was not uploaded by user "
                             f"{_restricted(request)!r} and is in nothing they may read; upload its bytes "
                             "(the server keeps one copy either way)", field=field)


def require_objects(request: Request, named: dict[str, tuple[Digest, bool]], field: str,
                    extra: Callable[[set[Digest]], set[str]] | None = None) -> None:
    """:func:`require` for objects that may be folder manifests (label → (digest, is a manifest)):
    each stored one, and each stored file (or pack) a manifest lists. An object that is not
    stored is left to the route's own "upload it first" error."""
    if _restricted(request) is None:
        return
    blobs = _deps.tracker(request).blobs
    stored = blobs.exists_many({d for d, _ in named.values()})
    tops = {label: d for label, (d, _) in named.items() if d in stored}
    require(request, tops, field, extra)
    files: dict[str, Digest] = {}
    for label, (digest, manifest) in named.items():
        if manifest and digest in stored:
            for entry in blobs.read_manifest(digest).entries:
                files[f"{label}: file {entry.path!r}"] = entry.digest  # downloadable by itself when stored
                if entry.pack is not None:
                    files[f"{label}: pack of file {entry.path!r}"] = entry.pack
    if files:
        present = blobs.exists_many(set(files.values()))
        require(request, {label: d for label, d in files.items() if d in present}, field, extra)


__all__ = ["held", "remember", "require", "require_objects"]
