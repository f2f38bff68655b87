"""The metadata store: one SQLAlchemy engine, transactions, schema revision checks.

Faults: every network call has a bound (``[store] connect_timeout`` for a connection,
``statement_timeout`` for a statement on PostgreSQL), and a transaction that fails in a
transient way (see ``_retry``) is tried again with exponential backoff for up to
``retry_seconds``. Opening a connection is always retried; a whole transaction is retried
when run through ``Store.transaction`` (its body must be idempotent).

Durability on SQLite: WAL with ``synchronous=FULL`` for every write transaction (a commit
that returned survives power loss) except those opened with ``write(durable=False)`` —
metric batches and a run's start and end — which use ``synchronous=NORMAL`` (they survive
a process crash or SIGKILL; the last ones may roll back after power loss).
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import case, create_engine, event, inspect, literal, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DataError, DBAPIError, IntegrityError, OperationalError

from conveyor.errors import ConfigError, Conflict, InvalidInput, SchemaOutdated, StorageError
from conveyor.settings import StoreSettings
from conveyor.store import _compat
from conveyor.store._artifacts import ArtifactRepo
from conveyor.store._experiments import ExperimentRepo
from conveyor.store._metrics import MetricRepo
from conveyor.store._receipts import write_receipts
from conveyor.store._retry import RetryPolicy, is_transient
from conveyor.store._runs import RunRepo
from conveyor.store._schema import DIGEST_COLUMNS, metadata

MIGRATIONS = Path(__file__).with_name("migrations")
#: The newest migration. A test checks it against the migration scripts; keeping it as a
#: constant spares every process from loading Alembic just to compare revisions.
HEAD_REVISION = "0011"
_WRITE = "conveyor_write"
_DURABLE = "conveyor_durable"
_UPGRADE_LOCK = 727275


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs, errors and ``--json``)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        import re

        return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
    return parsed.render_as_string(hide_password=True)


def normalize_url(url: str) -> str:
    """Accept the URLs people paste: ``postgresql://`` and ``postgres://`` mean psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Store:
    """Metadata of experiments, runs, metrics and artifacts (and what later layers add).

    Open it explicitly; nothing happens at construction::

        store = Store.open("sqlite:////tmp/c.db", create=True)
        with store.write() as conn:
            exp = store.experiments.get_or_create(conn, "demo")
    """

    experiments = ExperimentRepo()
    runs = RunRepo()
    metrics = MetricRepo()
    artifacts = ArtifactRepo()

    def __init__(self, engine: Engine, settings: StoreSettings | None = None) -> None:
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)
        self.settings = settings or StoreSettings()
        self.retry = RetryPolicy(self.settings.retry_seconds)

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: Any, *, create: bool = False) -> Store:
        """``open`` with the URL, timeouts and retry budget of a ``Settings`` object."""
        return cls.open(settings.metadata_url, create=create, settings=settings.store)

    @classmethod
    def connect(cls, url: str, *, settings: StoreSettings | None = None) -> Store:
        """An engine for ``url`` without touching the database yet."""
        settings = settings or StoreSettings()
        url = normalize_url(url)
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigError(
                f"metadata URL {url!r} is not a database URL",
                field="store.metadata_url",
                value=url,
                hint="use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db",
            ) from exc
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise ConfigError(
                f"metadata URL {url!r} names an unsupported database",
                field="store.metadata_url",
                value=url,
                hint="conveyor supports SQLite and PostgreSQL",
            )
        if parsed.get_backend_name() == "postgresql" and importlib.util.find_spec("psycopg") is None:
            raise ConfigError(
                f"metadata URL {parsed.render_as_string(hide_password=True)!r} needs psycopg 3",
                field="store.metadata_url",
                value=parsed.render_as_string(hide_password=True),
                hint="pip install 'conveyor-mlops[postgres]'",
            )
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"timeout": 60}
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["connect_args"] = _postgres_timeouts(settings)
        engine = create_engine(url, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            _tune_sqlite(engine)
        _dispose_after_fork(engine)
        return cls(engine, settings)

    @classmethod
    def open(cls, url: str, *, create: bool = False, settings: StoreSettings | None = None) -> Store:
        """Connect and check the schema revision.

        ``create=True`` makes a brand-new database (no conveyor tables yet) and migrates it to
        the current schema; an existing database that is behind always raises ``SchemaOutdated``
        naming ``conveyor db upgrade``.
        """
        if create:
            _make_sqlite_folder(url)
        else:
            path = _sqlite_path(url)
            if path is not None and not path.exists():
                raise SchemaOutdated(
                    f"there is no metadata store at {path}",
                    hint="run `conveyor init` in the project folder (or point CONVEYOR_STORE_METADATA_URL at one)",
                )
        store = cls.connect(url, settings=settings)
        try:
            current = store.current_revision()
            if current is None and create:
                store.install()
            else:
                store.check_revision(current)
        except BaseException:
            store.close()  # no pooled connection left behind (ResourceWarning on PostgreSQL)
            raise
        return store

    def close(self) -> None:
        self.engine.dispose()

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction. Opening it is retried while the database is unreachable, but a
        connection reset in the middle of the ``with`` block is not (a block cannot be run
        again): use :meth:`query` for a read that should ride out a blink."""
        with self._errors(), self._connect() as conn, conn.begin():
            yield conn

    def query(self, body: Any, *, what: str = "metadata read") -> Any:
        """``body(conn)`` in a read transaction of its own, run again from the start on a
        transient failure (a connection reset mid-SELECT, a restart, a serialization failure)
        with the bounded backoff of ``[store] retry_seconds``.

        Only for reads: ``body`` must not write (a retried write could happen twice) and must
        return materialised results (lists, records), not a cursor or a generator that reads
        after the transaction ended. Code handed a caller's connection runs its body on that
        connection without retrying: a failure inside someone else's transaction must end
        that transaction, never restart part of it."""

        def attempt() -> Any:
            with self.read() as conn:
                return body(conn)

        return self.retry.call(attempt, what=what)

    def reading(self, conn: Connection | None, body: Any, *, what: str = "metadata read") -> Any:
        """``body(conn)`` on the caller's connection when one is given (no retry: it is the
        caller's transaction), else through :meth:`query` (retried)."""
        if conn is not None:
            return body(conn)
        return self.query(body, what=what)

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Connection]:
        """A write transaction; on SQLite it takes the write lock up front (BEGIN IMMEDIATE) so
        concurrent writers wait on the busy timeout instead of failing mid-transaction.

        ``durable=False`` (metric batches only) lets SQLite commit without syncing the WAL:
        the commit survives a process crash but may roll back after a power loss."""
        with self._errors(), self._connect() as conn:
            conn = conn.execution_options(**{_WRITE: True, _DURABLE: durable})
            with conn.begin():
                yield conn

    def transaction(
        self, body: Any, *, durable: bool = True, what: str = "metadata write", once: bool = False
    ) -> Any:
        """Run ``body(conn)`` in a write transaction, retrying the whole transaction on
        transient failures (connection refused or reset, timeouts, serialization failures)
        with bounded exponential backoff within ``[store] retry_seconds``.

        An attempt whose commit acknowledgement was lost may have committed. Without
        ``once`` the body must be idempotent (upserts). With ``once=True`` a receipt (a
        random token and the body's JSON result) is written in the same transaction; a retry
        that finds it returns the recorded result instead of running the body again, so a
        body that adds rows (a version, an event) takes effect exactly once. Its result must
        then be JSON-serialisable (return ids and read the objects afterwards)."""
        token = uuid.uuid4().hex if once else None
        attempts = 0

        def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            with self.write(durable=durable) as conn:
                if token is None:
                    return body(conn)
                if attempts > 1:
                    done = conn.execute(
                        select(write_receipts.c.result).where(write_receipts.c.token == token)
                    ).first()
                    if done is not None:  # the earlier attempt committed; only its answer was lost
                        return None if done.result is None else json.loads(done.result)
                result = body(conn)
                conn.execute(write_receipts.insert().values(
                    token=token, at=int(time.time() * 1000), result=None if result is None else json.dumps(result)
                ))
                return result

        return self.retry.call(attempt, what=what)

    def _connect(self) -> Connection:
        """A connection, retried while the database is unreachable (nothing was sent yet)."""
        try:
            return self.retry.call(self.engine.connect, what=f"connecting to {self.url}")
        except DBAPIError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: DBAPIError) -> StorageError:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        return StorageError(
            f"metadata store {self.url} is unreachable: {mask_url(reason)}",
            hint=f"check that the database is up; waited up to {self.settings.retry_seconds:g} s "
            f"(setting store.retry_seconds, CONVEYOR_STORE_RETRY_SECONDS) with "
            f"{self.settings.connect_timeout:g} s per attempt "
            f"(setting store.connect_timeout, CONVEYOR_STORE_CONNECT_TIMEOUT)",
        )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except StorageError:
            raise
        except DBAPIError as exc:
            bad_input = input_error(exc)
            if bad_input is not None:
                raise bad_input from exc
            text_ = str(exc)
            if "no such table" in text_ or "does not exist" in text_ and "relation" in text_:
                raise SchemaOutdated(
                    f"the metadata store at {self.url} has no conveyor schema",
                    hint="run `conveyor db upgrade` (or `conveyor init` in a new project)",
                ) from exc
            if is_transient(exc):
                raise self._unreachable(exc) from exc
            if isinstance(exc, IntegrityError):
                raise
            raise StorageError(f"metadata store {self.url}: {mask_url(_first_line(exc))}") from exc

    # -- schema -------------------------------------------------------------------------------
    def current_revision(self) -> str | None:
        try:
            with self._connect() as conn:
                if not inspect(conn).has_table("alembic_version"):
                    return None
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except StorageError as exc:
            exc.hint = f"check store.metadata_url (CONVEYOR_STORE_METADATA_URL); {exc.hint}"
            raise
        except OperationalError as exc:
            raise StorageError(
                f"cannot open the metadata store {self.url}: {mask_url(_first_line(exc))}",
                hint="check store.metadata_url (CONVEYOR_STORE_METADATA_URL) and that the database is up",
            ) from exc

    def check_revision(self, current: str | None = None) -> None:
        current = self.current_revision() if current is None else current
        head = head_revision()
        if current == head:
            return
        if current is None:
            raise SchemaOutdated(
                f"the metadata store at {self.url} is not initialised",
                hint="run `conveyor init` (new project) or `conveyor db upgrade`",
            )
        known = known_revisions()
        if current in known:
            raise SchemaOutdated(
                f"the metadata store at {self.url} is at schema {current}, this conveyor needs {head}",
                hint="run `conveyor db upgrade`",
            )
        with self.read() as conn:
            newer = _compat.newer_revisions(conn, known, head)
        if newer and current in newer and all(newer.values()):
            return  # only additive migrations ahead of us: read and write what we know
        blocking = sorted(rev for rev, additive in (newer or {}).items() if not additive)
        why = f"; not additive: {', '.join(blocking)}" if blocking else ""
        raise SchemaOutdated(
            f"the metadata store at {self.url} has schema {current}, unknown to this conveyor "
            f"(written by a newer version?){why}",
            hint="upgrade conveyor to the version that ran `conveyor db upgrade`",
        )

    def install(self) -> None:
        """Create the current schema in an empty database and stamp it at the head revision.

        Equivalent to running every migration (a test proves it), but one transaction and no
        Alembic import. Two processes installing at once: one creates, the other finds it done.
        """
        with self.write() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(727274)"))
            if inspect(conn).has_table("alembic_version"):
                return
            metadata.create_all(conn)
            conn.execute(
                text(
                    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
                )
            )
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD_REVISION})
            _compat.record(conn, _compat.ADDITIVE)

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema (Alembic, migrations shipped in the package), holding the
        upgrade lock: a second upgrade at the same time raises ``Conflict`` at once."""
        from alembic import command

        with self._upgrade_lock():
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":  # an index build may take longer than a query
                    conn.execute(text("SET LOCAL statement_timeout = 0"))
                cfg = _alembic_config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                if inspect(conn).has_table(_compat.schema_log.name):
                    current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                    _compat.record(conn, applied_flags(current))

    @contextmanager
    def _upgrade_lock(self) -> Iterator[None]:
        """PostgreSQL: a session advisory lock; SQLite: an exclusive lock file beside the
        database. Either is released when the process ends, however it ends."""
        busy = Conflict(
            f"another `conveyor db upgrade` is running on {self.url}",
            hint="wait for it to finish, then run `conveyor db current`",
        )
        if self.engine.dialect.name == "postgresql":
            with self._connect() as conn:
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _UPGRADE_LOCK}).scalar()
                conn.commit()
                if not got:
                    raise busy
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _UPGRADE_LOCK})
                    conn.commit()
            return
        path = _sqlite_path(self.engine.url.render_as_string(hide_password=False))
        if path is None:
            yield
            return
        import fcntl

        with open(f"{path}.upgrade-lock", "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise busy from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- references -----------------------------------------------------------------------------
    def referenced_digests(self, conn: Connection) -> dict[str, bool]:
        """Every digest some row points at → whether it names a manifest (not expanded)."""
        out: dict[str, bool] = {}
        for ref in DIGEST_COLUMNS:
            if ref.manifest is None or ref.manifest is False:
                flag: Any = literal(False)
            elif ref.manifest is True:
                flag = literal(True)
            else:
                flag = case((ref.manifest, literal(True)), else_=literal(False))
            query = select(ref.column, flag).where(ref.column.is_not(None)).distinct()
            for digest, is_manifest in conn.execute(query).all():
                out[digest] = out.get(digest, False) or bool(is_manifest)
        return out


def input_error(exc: DBAPIError) -> InvalidInput | None:
    """A database error caused by what the user asked for, as one line without the SQL
    (which PostgreSQL echoes in its messages): a value the database refuses. (A search
    cancelled by its timeout is mapped where the search runs; any other statement past
    ``[store] statement_timeout`` is the store's error.) ``None`` for every other error (the store's: exit 4)."""
    if isinstance(exc, DataError):
        return InvalidInput(
            f"the metadata store refused a value: {_first_line(exc)}",
            hint="check the lengths and types of names, keys and values",
        )
    return None


def _first_line(exc: DBAPIError) -> str:
    text = str(exc.orig if exc.orig is not None else exc).strip()
    return (text.splitlines() or ["unknown database error"])[0][:300]


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@cache
def _script() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    return HEAD_REVISION


def applied_flags(current: str | None) -> dict[str, bool]:
    """The ``additive`` flag of every shipped migration up to ``current``."""
    out: dict[str, bool] = {}
    for rev in reversed(list(_script().walk_revisions())):
        module = rev.module
        out[rev.revision] = bool(getattr(module, "additive", False))
        if rev.revision == current:
            break
    return out


def _postgres_timeouts(settings: StoreSettings) -> dict[str, Any]:
    """libpq options that bound every wait: connecting, each statement, a transaction left
    idle by a dead client, and unacknowledged data on a dead network."""
    statement_ms = int(settings.statement_timeout * 1000)
    return {
        "connect_timeout": max(2, int(round(settings.connect_timeout))),
        "options": f"-c statement_timeout={statement_ms} -c idle_in_transaction_session_timeout={statement_ms}",
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": int(max(settings.connect_timeout, 10) * 1000),
    }


def scripted_head() -> str:
    """The head revision according to the migration scripts themselves."""
    return str(_script().get_current_head())


def known_revisions() -> set[str]:
    return {rev.revision for rev in _script().walk_revisions()}


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///") and ":memory:" not in url:
        return Path(url[len("sqlite:///"):].split("?", 1)[0]).expanduser()
    return None


def _make_sqlite_folder(url: str) -> None:
    path = _sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # The driver's own transaction handling is turned off: we emit BEGIN ourselves.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        mode = "IMMEDIATE" if options.get(_WRITE) else "DEFERRED"
        if options.get(_WRITE):
            # synchronous is per connection and outside a transaction: set it for this one
            wanted = "FULL" if options.get(_DURABLE, True) else "NORMAL"
            info = conn.connection.info
            if info.get("synchronous") != wanted:
                conn.exec_driver_sql(f"PRAGMA synchronous={wanted}")
                info["synchronous"] = wanted
        for attempt in range(200):
            try:
                conn.exec_driver_sql(f"BEGIN {mode}")
                return
            except OperationalError as exc:  # busy beyond the timeout under heavy contention
                if "locked" not in str(exc) or attempt == 199:
                    raise
                time.sleep(0.05)


_ENGINES: "weakref.WeakSet[Engine]" = weakref.WeakSet()


def _dispose_in_child() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_in_child)


def _dispose_after_fork(engine: Engine) -> None:
    """Connections must not be shared with a forked child (pipelines fork workers)."""
    _ENGINES.add(engine)
