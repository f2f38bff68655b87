"""Rolling upgrades: which schema revisions a client may work with.

Every migration script says whether it is *additive* (``additive = True``): it only adds
tables, nullable columns, columns with a server default, or indexes, so a client that does
not know it still reads and writes everything it knows. The database keeps a log of the
migrations applied to it (``conveyor_schema_log``) with that flag, so a client older than
the database can tell, without the newer scripts, whether it may go on:

- database at this client's head: fine;
- database behind: ``conveyor db upgrade`` first (this client needs the newer columns);
- database ahead, and every revision this client does not know is additive: fine;
- database ahead with a non-additive revision (or no log to tell): upgrade conveyor.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Integer, String, Table, inspect, select
from sqlalchemy.engine import Connection

from conveyor.entities import now_ms
from conveyor.store._schema import metadata

schema_log = Table(
    "conveyor_schema_log",
    metadata,
    Column("revision", String(32), primary_key=True),
    Column("additive", Boolean, nullable=False),
    Column("applied_at", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
)

#: Whether each shipped migration is additive. A test checks it against the ``additive``
#: flag of every script, so ``Store.install`` can log them without importing Alembic.
ADDITIVE: dict[str, bool] = {
    "0001": False,  # the first schema: nothing older to be compatible with
    "0002": True,
    "0003": True,
    "0004": True,
    "0005": True,
    "0006": True,
    "0007": True,
    # a client that does not know FAILED_REGISTRATION would serve and promote broken versions
    "0008": False,
    "0009": True,
    "0010": True,
    "0011": True,  # write_receipts: a new table
}


def record(conn: Connection, revisions: dict[str, bool]) -> None:
    """Log applied revisions (idempotent)."""
    known = set(conn.execute(select(schema_log.c.revision)).scalars())
    rows = [
        {"revision": rev, "additive": flag, "applied_at": now_ms()}
        for rev, flag in revisions.items()
        if rev not in known
    ]
    if rows:
        conn.execute(schema_log.insert(), rows)


def newer_revisions(conn: Connection, known: set[str], head: str) -> dict[str, bool] | None:
    """The logged revisions this client does not know → additive flag; ``None`` when the
    database has no log or never went through this client's head (nothing can be told)."""
    if not inspect(conn).has_table(schema_log.name):
        return None
    logged = dict(conn.execute(select(schema_log.c.revision, schema_log.c.additive)).all())
    if head not in logged:
        return None
    return {rev: bool(flag) for rev, flag in logged.items() if rev not in known}
