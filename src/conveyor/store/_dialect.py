"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement


def _insert(conn: Connection, table: Table) -> Any:
    # imported here: the PostgreSQL dialect pulls in asyncio and ssl, which SQLite users skip
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    raise NotImplementedError(f"conveyor supports SQLite and PostgreSQL, not {conn.dialect.name}")


def insert_ignore(conn: Connection, table: Table, keys: Sequence[str]) -> Any:
    """INSERT … ON CONFLICT (keys) DO NOTHING."""
    return _insert(conn, table).on_conflict_do_nothing(index_elements=list(keys))


def upsert(
    conn: Connection,
    table: Table,
    keys: Sequence[str],
    update_columns: Sequence[str],
    *,
    where: Any = None,
) -> Any:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET columns = excluded.columns [WHERE …].

    ``where`` is a function of ``(table, excluded)`` returning a condition, so callers
    can keep the newest row (e.g. the latest metric value by step and timestamp).
    """
    stmt = _insert(conn, table)
    excluded = stmt.excluded
    values: Mapping[str, ColumnElement[Any]] = {c: excluded[c] for c in update_columns}
    condition = where(table, excluded) if where is not None else None
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=values, where=condition)
