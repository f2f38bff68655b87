"""The shared SQLAlchemy ``MetaData`` and column helpers.

Each aggregate module (``_experiments``, ``_runs``, ``_metrics``, ``_artifacts``, and
those later issues add) declares its own tables on this metadata; Alembic migrations in
``migrations/versions`` create them. ``DIGEST_COLUMNS`` lists every column that holds an
artifact-store digest, so that ``doctor`` and ``gc`` know what is referenced without
knowing each aggregate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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



@dataclass(frozen=True)
class DigestColumn:
    """A column holding artifact-store digests ("blake3:…"); ``manifest`` is a condition on
    the row that is true when the digest names a manifest (a folder) rather than a file."""

    table: Table
    column: Column[Any]
    manifest: Any = None


#: Every column whose values reference objects in the artifact store.
DIGEST_COLUMNS: list[DigestColumn] = []


def register_digest_column(
    table: Table, column_name: str, manifest: Callable[[Table], Any] | bool | None = None
) -> None:
    """Declare that ``table.column_name`` references objects in the artifact store.

    ``manifest`` is ``True`` when every value is a manifest, or a function of the table giving
    the SQL condition under which it is (``lambda t: t.c.is_dir``).
    """
    condition = manifest(table) if callable(manifest) else manifest
    DIGEST_COLUMNS.append(DigestColumn(table, table.c[column_name], condition))
