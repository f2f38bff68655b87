"""The shared SQLAlchemy ``MetaData`` and column helpers.

Each aggregate module (``_experiments``, ``_runs``, ``_metrics``, ``_artifacts``, and
those later issues add) declares its own tables on this metadata; Alembic migrations in
``migrations/versions`` create them. ``DIGEST_COLUMNS`` lists every column that holds an
artifact-store digest, so that ``doctor`` and ``gc`` know what is referenced without
knowing each aggregate.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData
from sqlalchemy.sql.schema import Table

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# BIGINT on PostgreSQL, but INTEGER on SQLite so that it can be an auto-increment rowid.
BigInt = BigInteger().with_variant(Integer(), "sqlite")

#: (table, column) pairs whose values are artifact-store digests ("blake3:…").
DIGEST_COLUMNS: list[tuple[Table, Column[str]]] = []


def register_digest_column(table: Table, column_name: str) -> None:
    """Declare that ``table.column_name`` references objects in the artifact store."""
    DIGEST_COLUMNS.append((table, table.c[column_name]))
