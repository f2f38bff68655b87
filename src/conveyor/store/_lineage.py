"""Lineage edges: ``upstream (kind, id) → downstream (kind, id)`` with a relation.

Generic on purpose: data sets, runs, artifacts, pipeline steps, model versions and git
commits are all nodes named by a kind and a string id, so every later aggregate records
its links here instead of growing its own link table. Edges are history: they are kept
when a node is deleted (no foreign keys), and recording one twice is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Column, Index, String, Table, UniqueConstraint, select, tuple_
from sqlalchemy.engine import Connection

from conveyor.store._dialect import insert_ignore
from conveyor.store._schema import BigInt, metadata

lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("upstream_kind", String(32), nullable=False),
    Column("upstream_id", String(512), nullable=False),
    Column("downstream_kind", String(32), nullable=False),
    Column("downstream_id", String(512), nullable=False),
    Column("relation", String(64), nullable=False),
    Column("created_at", BigInt, nullable=False),
    Column("run_id", String(32), nullable=True),
    UniqueConstraint(
        "upstream_kind", "upstream_id", "downstream_kind", "downstream_id", "relation", name="uq_lineage_edges_edge"
    ),
    Index("ix_lineage_edges_downstream_kind_downstream_id", "downstream_kind", "downstream_id"),
    Index("ix_lineage_edges_run_id", "run_id"),
)

_KEY = ("upstream_kind", "upstream_id", "downstream_kind", "downstream_id", "relation")

#: A row of ``lineage_edges`` as a plain tuple:
#: (upstream_kind, upstream_id, downstream_kind, downstream_id, relation, created_at, run_id).
EdgeRow = tuple[str, str, str, str, str, int, str | None]


class LineageRepo:
    """Insert and walk lineage edges; node validation happens in ``conveyor.data``."""

    def record(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert edges (dicts with the table's columns except ``id``); duplicates are ignored."""
        if rows:
            conn.execute(insert_ignore(conn, lineage_edges, _KEY), list(rows))

    def neighbours(
        self, conn: Connection, nodes: Iterable[tuple[str, str]], *, upstream: bool
    ) -> list[EdgeRow]:
        """Edges whose downstream (``upstream=True``: walking up) or upstream end is in ``nodes``."""
        keys = list(dict.fromkeys(nodes))
        if not keys:
            return []
        t = lineage_edges
        kind, ident = (t.c.downstream_kind, t.c.downstream_id) if upstream else (t.c.upstream_kind, t.c.upstream_id)
        out: list[EdgeRow] = []
        for start in range(0, len(keys), 200):  # bounded IN lists
            chunk = keys[start : start + 200]
            query = select(
                t.c.upstream_kind, t.c.upstream_id, t.c.downstream_kind, t.c.downstream_id,
                t.c.relation, t.c.created_at, t.c.run_id,
            ).where(tuple_(kind, ident).in_(chunk)).order_by(t.c.id)
            out.extend(tuple(r) for r in conn.execute(query).all())
        return out
