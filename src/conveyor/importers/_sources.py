"""Readers of an MLflow tracking source: a tracking server (its REST API, over httpx), a
file store (``mlruns/``: YAML and text files) or a SQLite store (its tables, read-only,
with SQLAlchemy). Nothing here imports ``mlflow`` and nothing is ever unpickled: model
folders are files to copy.

Every reader yields the same plain records (:class:`Exp`, :class:`SourceRun`,
:class:`Version`, :class:`LoggedModel`) and :class:`Tree` objects for artifact folders, so
the copy logic in ``_mlflow.py`` does not know where they came from.

Here: :func:`open_source`, which picks the reader for a ``--from`` URI. The readers live in
``_rest`` (server), ``_filestore`` and ``_sqlite``; the records and local trees in ``_records``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from conveyor.errors import InvalidInput
from conveyor.importers._records import (
    Exp,
    LoggedModel,
    MissingTree,
    RegisteredModel,
    SourceRun,
    Tree,
    Version,
)
from conveyor.importers._filestore import FileSource
from conveyor.importers._rest import RestSource, RestTree
from conveyor.importers._sqlite import SqliteSource


def open_source(uri: str, *, artifacts_dir: str | None = None) -> FileSource | SqliteSource | RestSource:
    """The reader for ``--from URI``; a URI it cannot read is an error naming it and the fix."""
    hint = ("use an MLflow tracking server's http(s):// URL, a file store folder (./mlruns) "
            "or sqlite:///path/to/mlflow.db")
    proxied = Path(artifacts_dir).expanduser() if artifacts_dir else None
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput("--from is empty", field="--from", value=uri, hint=hint)
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        if not parsed.netloc:
            raise InvalidInput(f"{uri!r} names no host", field="--from", value=uri, hint="write http://host:5000")
        return RestSource(uri)
    if scheme == "sqlite":
        raw = uri.split(":///", 1)[1] if ":///" in uri else ""
        if not raw or raw == ":memory:":
            raise InvalidInput(f"{uri!r} names no database file", field="--from", value=uri,
                               hint="write sqlite:///relative/mlflow.db or sqlite:////absolute/mlflow.db")
        path = Path(unquote(raw.split("?", 1)[0]))
        if not path.is_file():
            raise InvalidInput(f"{uri!r}: no file at {path}", field="--from", value=uri,
                               hint="check the path (sqlite:/// + a relative path, sqlite://// + an absolute one)")
        return SqliteSource(path, proxied or (path.parent / "mlartifacts"), shown=uri)
    if scheme == "file":
        return _folder(Path(unquote(parsed.path)), uri, proxied, hint)
    if scheme and len(scheme) > 1:
        what = {"postgresql": "a PostgreSQL store", "mysql": "a MySQL store", "mssql": "an SQL Server store",
                "databricks": "Databricks", "postgres": "a PostgreSQL store"}.get(scheme.split("+")[0], f"{scheme}://")
        raise InvalidInput(
            f"{uri!r}: importing from {what} directly is not supported",
            field="--from", value=uri,
            hint=("start `mlflow server --backend-store-uri <that URI>` and import from its http:// URL, or " + hint)
            if scheme.split("+")[0] in ("postgresql", "postgres", "mysql", "mssql") else hint,
        )
    return _folder(Path(uri).expanduser(), uri, proxied, hint)


def _folder(path: Path, uri: str, proxied: Path | None, hint: str) -> FileSource | SqliteSource:
    if path.is_file():
        if path.suffix == ".db":
            raise InvalidInput(f"{uri!r} is a file, not a file store folder", field="--from", value=uri,
                               hint=f"for a SQLite store write sqlite:///{path}")
        raise InvalidInput(f"{uri!r} is a file, not an MLflow file store folder", field="--from", value=uri, hint=hint)
    if not path.is_dir():
        raise InvalidInput(f"{uri!r}: no such folder", field="--from", value=uri, hint=hint)
    return FileSource(path, proxied or (path.parent / "mlartifacts"))


__all__ = [
    "Exp", "FileSource", "LoggedModel", "MissingTree", "RegisteredModel", "RestSource", "RestTree", "SourceRun",
    "SqliteSource", "Tree", "Version", "open_source",
]
