"""The metadata store: one SQLAlchemy engine, transactions, schema revision checks."""

from __future__ import annotations

import importlib.util
import os
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import case, create_engine, event, inspect, literal, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DataError, DBAPIError, IntegrityError, OperationalError

from conveyor.errors import ConfigError, InvalidInput, SchemaOutdated, StorageError
from conveyor.store._artifacts import ArtifactRepo
from conveyor.store._experiments import ExperimentRepo
from conveyor.store._metrics import MetricRepo
from conveyor.store._runs import RunRepo
from conveyor.store._schema import DIGEST_COLUMNS, metadata

MIGRATIONS = Path(__file__).with_name("migrations")
#: The newest migration. A test checks it against the migration scripts; keeping it as a
#: constant spares every process from loading Alembic just to compare revisions.
HEAD_REVISION = "0006"
_WRITE = "conveyor_write"


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

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def connect(cls, url: str) -> Store:
        """An engine for ``url`` without touching the database yet."""
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
        engine = create_engine(url, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            _tune_sqlite(engine)
        _dispose_after_fork(engine)
        return cls(engine)

    @classmethod
    def open(cls, url: str, *, create: bool = False) -> Store:
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
        store = cls.connect(url)
        current = store.current_revision()
        if current is None and create:
            store.install()
        else:
            store.check_revision(current)
        return store

    def close(self) -> None:
        self.engine.dispose()

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it takes the write lock up front (BEGIN IMMEDIATE) so
        concurrent writers wait on the busy timeout instead of failing mid-transaction."""
        with self._errors(), self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except DBAPIError as exc:
            bad_input = input_error(exc)
            if bad_input is not None:
                raise bad_input from exc
            if "no such table" in str(exc) or "does not exist" in str(exc) and "relation" in str(exc):
                raise SchemaOutdated(
                    f"the metadata store at {self.url} has no conveyor schema",
                    hint="run `conveyor db upgrade` (or `conveyor init` in a new project)",
                ) from exc
            if isinstance(exc, IntegrityError):
                raise
            raise StorageError(f"metadata store {self.url}: {_first_line(exc)}") from exc

    # -- schema -------------------------------------------------------------------------------
    def current_revision(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("alembic_version"):
                    return None
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except OperationalError as exc:
            raise StorageError(
                f"cannot open the metadata store {self.url}: {_first_line(exc)}",
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
        if current in known_revisions():
            raise SchemaOutdated(
                f"the metadata store at {self.url} is at schema {current}, this conveyor needs {head}",
                hint="run `conveyor db upgrade`",
            )
        raise SchemaOutdated(
            f"the metadata store at {self.url} has schema {current}, unknown to this conveyor "
            f"(written by a newer version?)",
            hint="upgrade conveyor",
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

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema (Alembic, migrations shipped in the package)."""
        from alembic import command

        with self.engine.begin() as conn:
            cfg = _alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

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
    (which PostgreSQL echoes in its messages): a statement cancelled by the search timeout,
    or a value the database refuses. ``None`` for every other error (the store's: exit 4)."""
    if _sqlstate(exc) == "57014":  # query_canceled: statement_timeout
        return InvalidInput(
            "the search took longer than the statement timeout and was cancelled",
            field="tracking.search_timeout",
            hint="narrow the filter, or raise [tracking] search_timeout (CONVEYOR_TRACKING_SEARCH_TIMEOUT)",
        )
    if isinstance(exc, DataError):
        return InvalidInput(
            f"the metadata store refused a value: {_first_line(exc)}",
            hint="check the lengths and types of names, keys and values",
        )
    return None


def _first_line(exc: DBAPIError) -> str:
    text = str(exc.orig if exc.orig is not None else exc).strip()
    return (text.splitlines() or ["unknown database error"])[0][:300]


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


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
        mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "DEFERRED"
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
