"""How ``conveyor.data`` reaches the stores: anything with ``.store`` and ``.blobs`` (a
``Tracker``), a ``Store`` alone for metadata-only calls, or an open connection.

``conveyor.data`` sits beside ``conveyor.tracking`` in the layers and must not import it,
so the defaults are opened from the settings here, once per project root.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from conveyor.blobs import BlobStore
from conveyor.errors import InvalidInput
from conveyor.settings import Settings
from conveyor.store import Store

T = TypeVar("T")

__all__ = ["Stores", "active_run_id", "blobs_for", "connection", "remote_http", "resolve", "transaction"]

_lock = threading.Lock()
_defaults: dict[Path, Stores] = {}
_servers: dict[Any, Any] = {}


class Stores:
    """The metadata store, the artifact store and the project root (for the stat cache).

    ``settings`` pins the project settings (the quickstart passes its own); when None they
    are read from the working directory at each call.
    """

    def __init__(self, store: Store, blobs: BlobStore | None, root: Path, settings: Settings | None = None) -> None:
        self.store = store
        self.blobs = blobs
        self.root = root
        self.settings = settings

    def need_blobs(self) -> BlobStore:
        if self.blobs is None:
            raise InvalidInput("this operation needs an artifact store", field="tracker", hint="pass a Tracker")
        return self.blobs


def remote_http(target: Any = None) -> Any:
    """The conveyor server's HTTP client when ``target`` talks to a server (a
    ``RemoteTracker``), or when none is given and the project's settings name a server
    (``[server] url``: remote mode); else None (the stores are reached directly)."""
    if target is None:
        settings = Settings.load()
        if getattr(getattr(settings, "server", None), "url", None) is None:
            return None
        with _lock:
            key = (settings.root, settings.server.url, settings.server.token)
            found = _servers.get(key)
            if found is None:
                # Imported here: conveyor.data does not import tracking unless a server is named.
                from conveyor.tracking._remote import Http

                found = _servers[key] = Http(settings.server)
            return found
    if isinstance(target, (Stores, Store, Connection)):
        return None
    http = getattr(target, "http", None)
    return http if http is not None and hasattr(http, "request") else None


def blobs_for(target: Any, name: str, version: int) -> BlobStore:
    """Where a version's objects are read from: the artifact store, or in remote mode the
    server's objects of that one version (``conveyor.blobs._http``)."""
    http = remote_http(target)
    if http is None:
        return resolve(target).need_blobs()
    from conveyor.blobs._http import HttpBackend

    return BlobStore(HttpBackend(http, name, version=version))


def resolve(target: Any = None) -> Stores:
    """Stores from a Tracker-like object, a Store, or (``None``) the project's settings."""
    if isinstance(target, Stores):
        return target
    if target is None:
        settings = Settings.load()
        server = getattr(getattr(settings, "server", None), "url", None)
        if server is not None:  # remote mode: conveyor.data's functions go through the server
            raise InvalidInput(
                f"this needs the stores directly, and this project names only a server ({server})",
                field="server.url", value=server,
                hint="run it where the stores are (the server's machine), or use conveyor.data's functions, "
                "which go through the server",
            )
        with _lock:
            found = _defaults.get(settings.root)
            if found is None:
                store = Store.from_settings(settings, create=True)
                blobs = BlobStore.from_settings(settings)
                blobs.init()
                found = _defaults[settings.root] = Stores(store, blobs, settings.root)
            return found
    if isinstance(target, Store):
        return Stores(target, None, Path.cwd())
    tracker_store, tracker_blobs = getattr(target, "store", None), getattr(target, "blobs", None)
    if isinstance(tracker_store, Store):
        return Stores(tracker_store, tracker_blobs if isinstance(tracker_blobs, BlobStore) else None, Path.cwd())
    raise InvalidInput(
        f"cannot reach the stores through {type(target).__name__}", field="tracker", value=type(target).__name__,
        hint="pass a conveyor Tracker, a Store, or nothing (the project's settings)",
    )


def reset_defaults() -> None:
    """Forget the stores opened from the settings (tests switch projects)."""
    with _lock:
        for stores in _defaults.values():
            stores.store.close()
        _defaults.clear()
        for http in _servers.values():
            http.close()
        _servers.clear()


@contextmanager
def connection(target: Any) -> Iterator[Connection]:
    """A connection to read with: the caller's own (inside its transaction), or a new read."""
    if isinstance(target, Connection):
        yield target
        return
    with resolve(target).store.read() as conn:
        yield conn


def transaction(target: Any, body: Callable[[Connection], T], *, what: str, once: bool = False) -> T:
    """``body(conn)`` in the caller's own transaction, or in a new one retried through a
    database blink (``Store.transaction``: with ``once`` a retry after a lost COMMIT
    acknowledgement returns the first attempt's JSON result instead of running again)."""
    if isinstance(target, Connection):
        return body(target)
    return resolve(target).store.transaction(body, once=once, what=what)  # type: ignore[no-any-return]


def active_run_id() -> str | None:
    """The innermost active run of ``conveyor.start_run`` — if tracking is loaded at all.

    Read through ``sys.modules`` rather than imported: ``data`` and ``tracking`` are
    siblings in the layers, and when tracking was never imported no run can be active.
    """
    tracking = sys.modules.get("conveyor.tracking")
    if tracking is None:
        return None
    run = tracking.active_run()
    return None if run is None else str(run.id)
