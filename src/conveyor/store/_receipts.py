"""Write receipts: what makes a retried transaction happen exactly once.

A transaction whose COMMIT reached the database but whose acknowledgement was lost (the
connection reset in between) looks failed to the client, which retries it. Upserts do not
care; a transaction that *adds* something (a model version, a data set version, an alias
move's history event) would add it twice. ``Store.transaction(body, once=True)`` records a
random token in a ``write_receipts`` row inside the same transaction, with the body's
(JSON) result; a retry that finds its token knows the first attempt committed and returns
that result instead of running the body again. Receipts older than a day are pruned by
``conveyor gc``.
"""

from __future__ import annotations

from sqlalchemy import Column, String, Table, Text

from conveyor.store._schema import BigInt, metadata

write_receipts = Table(
    "write_receipts",
    metadata,
    Column("token", String(32), primary_key=True),
    Column("at", BigInt, nullable=False),
    Column("result", Text, nullable=True),
)

#: How long a receipt is kept (a retry never outlives its retry budget, which is seconds).
RECEIPT_TTL_MS = 24 * 3600 * 1000

__all__ = ["RECEIPT_TTL_MS", "write_receipts"]
