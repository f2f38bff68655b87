"""Lineage: record edges between nodes and walk them upstream and downstream.

Besides the recorded edges, a few links are implied by other tables and added on the
walk: an artifact was produced by its run, a run ran the commit it recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.engine import Connection

from conveyor.entities import now_ms
from conveyor.errors import InvalidInput
from conveyor.store import LineageRepo, runs
from conveyor.store import artifacts as artifacts_table

from conveyor.data._context import connection, remote_http, resolve
from conveyor.data._refs import Node, parse_dataset_ref, parse_node

__all__ = ["Edge", "LineageGraph", "lineage_graph", "record_lineage"]

_repo = LineageRepo()
_MAX_DEPTH = 50
NodeLike = str | Node | tuple[str, str]


@dataclass(frozen=True)
class Edge:
    """``upstream`` → ``downstream`` with a relation (``input``, ``output``, ``produced``…)."""

    upstream: Node
    downstream: Node
    relation: str
    created_at: int | None = None
    run_id: str | None = None
    implied: bool = False


@dataclass(frozen=True)
class LineageGraph:
    """What lies upstream and downstream of ``root``, as edge lists.

    Example::

        >>> g = lineage_graph(tracker, "data:/iris@1")  # doctest: +SKIP
        >>> [str(e.downstream) for e in g.children(g.root, upstream=False)]  # doctest: +SKIP
        ['runs:/4f2a…']
    """

    root: Node
    upstream: tuple[Edge, ...] = field(default=())
    downstream: tuple[Edge, ...] = field(default=())

    def children(self, node: Node, *, upstream: bool) -> list[Edge]:
        """Edges one step further from the root: those into ``node`` when walking upstream."""
        if upstream:
            return [e for e in self.upstream if e.downstream == node]
        return [e for e in self.downstream if e.upstream == node]

    @property
    def nodes(self) -> set[Node]:
        found = {self.root}
        for edge in (*self.upstream, *self.downstream):
            found.update((edge.upstream, edge.downstream))
        return found

    def to_dict(self) -> dict[str, Any]:
        def edge(e: Edge) -> dict[str, Any]:
            return {
                "upstream": str(e.upstream), "downstream": str(e.downstream), "relation": e.relation,
                "created_at": e.created_at, "run_id": e.run_id, "implied": e.implied,
            }

        return {
            "root": str(self.root),
            "upstream": [edge(e) for e in self.upstream],
            "downstream": [edge(e) for e in self.downstream],
        }


def _check_relation(relation: str) -> str:
    if not isinstance(relation, str) or not relation or len(relation) > 64:
        raise InvalidInput(
            f"lineage relation {relation!r} is not valid", field="relation", value=relation,
            hint="a short verb or noun such as 'input', 'output', 'trained_on'",
        )
    return relation


def record_lineage(
    target: Any,
    upstream: NodeLike,
    downstream: NodeLike,
    relation: str,
    *,
    run_id: str | None = None,
) -> Edge:
    """Record that ``upstream`` flowed into ``downstream``; recording it again is a no-op.

    ``target`` is an open SQLAlchemy connection (the edge joins the caller's transaction),
    a ``Tracker``, a ``Store``, or ``None`` for the project's stores. Nodes are URIs
    (``runs:/id``, ``runs:/id/path``, ``data:/name@3``, ``models:/name/3``,
    ``<kind>:<id>``), ``(kind, id)`` pairs or :class:`Node`.

    Example::

        >>> record_lineage(tracker, "data:/iris@2", f"runs:/{run.id}", "input")  # doctest: +SKIP
        Edge(upstream=Node(kind='dataset_version', id='iris@2'), …)
    """
    edge = Edge(parse_node(upstream), parse_node(downstream), _check_relation(relation), now_ms(), run_id)
    if isinstance(target, Connection):  # the caller's transaction
        _repo.record(target, [_row(edge)])
        return edge
    if (http := remote_http(target)) is not None:
        from conveyor.data import _remote

        return _remote.record_lineage(http, edge)  # type: ignore[no-any-return]
    # duplicates are ignored: retried through a database blink without a second edge
    resolve(target).store.transaction(lambda conn: _repo.record(conn, [_row(edge)]), what="recording lineage")
    return edge


def record_edges(conn: Connection, edges: Iterable[Edge]) -> None:
    """Record many edges in the caller's transaction."""
    _repo.record(conn, [_row(e) for e in edges])


def _row(edge: Edge) -> dict[str, Any]:
    return {
        "upstream_kind": edge.upstream.kind, "upstream_id": edge.upstream.id,
        "downstream_kind": edge.downstream.kind, "downstream_id": edge.downstream.id,
        "relation": edge.relation, "created_at": edge.created_at or now_ms(), "run_id": edge.run_id,
    }


def lineage_graph(
    target: Any,
    ref: NodeLike,
    *,
    direction: Literal["up", "down", "both"] = "both",
    depth: int | None = None,
) -> LineageGraph:
    """Walk the edges from ``ref`` breadth-first, ``depth`` levels (default: all, up to 50).

    ``data:/name`` (no version) means the latest version of that data set.

    Example::

        >>> g = lineage_graph(None, "runs:/4f2a/model", direction="up")  # doctest: +SKIP
        >>> sorted(n.kind for n in g.nodes)  # doctest: +SKIP
        ['artifact', 'commit', 'dataset_version', 'run']
    """
    if direction not in ("up", "down", "both"):
        raise InvalidInput(
            f"lineage direction {direction!r} is not valid", field="direction", value=direction, hint="up, down or both"
        )
    if depth is not None and (not isinstance(depth, int) or depth < 1):
        raise InvalidInput(f"lineage depth {depth!r} must be a positive integer", field="depth", value=depth)
    levels = min(depth or _MAX_DEPTH, _MAX_DEPTH)
    if (http := remote_http(target)) is not None:
        from conveyor.data import _remote

        root_text = ref if isinstance(ref, str) else str(parse_node(ref))
        return _remote.lineage_graph(http, root_text, direction, depth)  # type: ignore[no-any-return]
    with connection(target) as conn:
        root = _resolve_root(conn, ref)
        up = _walk(conn, root, levels, upstream=True) if direction in ("up", "both") else ()
        down = _walk(conn, root, levels, upstream=False) if direction in ("down", "both") else ()
    return LineageGraph(root, tuple(up), tuple(down))


def _resolve_root(conn: Connection, ref: NodeLike) -> Node:
    if isinstance(ref, str) and ref.startswith("data:"):
        parsed = parse_dataset_ref(ref)
        if parsed.version is None:
            from conveyor.store import DatasetRepo

            latest = DatasetRepo().get(conn, parsed.name, None)
            return Node("dataset_version", f"{latest.name}@{latest.version}")
    return parse_node(ref)


def _walk(conn: Connection, root: Node, levels: int, *, upstream: bool) -> list[Edge]:
    seen = {root}
    frontier = [root]
    out: list[Edge] = []
    for _ in range(levels):
        if not frontier:
            break
        found = [
            Edge(Node(uk, ui), Node(dk, di), rel, created, run_id)
            for uk, ui, dk, di, rel, created, run_id in _repo.neighbours(
                conn, [(n.kind, n.id) for n in frontier], upstream=upstream
            )
        ]
        found.extend(_implied(conn, frontier, upstream=upstream))
        nxt: list[Node] = []
        keys = {(e.upstream, e.downstream, e.relation) for e in out}
        for edge in found:
            if (edge.upstream, edge.downstream, edge.relation) in keys:
                continue
            keys.add((edge.upstream, edge.downstream, edge.relation))
            out.append(edge)
            far = edge.upstream if upstream else edge.downstream
            if far not in seen:
                seen.add(far)
                nxt.append(far)
        frontier = nxt
    return out


def _implied(conn: Connection, nodes: list[Node], *, upstream: bool) -> list[Edge]:
    """Links other tables already hold: run → artifact ("produced"), commit → run ("code")."""
    out: list[Edge] = []
    run_ids = [n.id for n in nodes if n.kind == "run"]
    if upstream:
        for node in nodes:
            if node.kind == "artifact":
                run_id = node.id.partition("/")[0]
                out.append(Edge(Node("run", run_id), node, "produced", run_id=run_id, implied=True))
        if run_ids:
            query = select(runs.c.id, runs.c.git_commit).where(runs.c.id.in_(run_ids), runs.c.git_commit.is_not(None))
            for run_id, commit in conn.execute(query).all():
                out.append(Edge(Node("commit", commit), Node("run", run_id), "code", run_id=run_id, implied=True))
    elif run_ids:
        query = select(artifacts_table.c.run_id, artifacts_table.c.path).where(artifacts_table.c.run_id.in_(run_ids))
        for run_id, path in conn.execute(query.order_by(artifacts_table.c.run_id, artifacts_table.c.path)).all():
            out.append(Edge(Node("run", run_id), Node("artifact", f"{run_id}/{path}"), "produced", run_id=run_id, implied=True))
    return out
