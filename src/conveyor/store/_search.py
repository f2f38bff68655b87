"""Run search: the filter AST compiled to SQL with bound parameters, ordered and paged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select, and_, case, false, func, not_, or_, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from conveyor.entities import Run
from conveyor.errors import InvalidInput
from conveyor.store._experiments import experiments
from conveyor.store._filter import And, Compare, Field, Node, Not, Or, parse_filter, parse_order_by
from conveyor.store._metrics import MetricRepo, latest_metrics
from conveyor.store._runs import RUN_COLUMNS, RunRepo, params, run_tags, runs

#: The most runs one search returns (PostgreSQL and SQLite alike); page with ``offset``.
MAX_RESULTS = 1_000_000
_TABLES = {"metric": latest_metrics, "param": params, "tag": run_tags}


def _attribute_column(key: str) -> Any:
    return experiments.c.name if key == "experiment" else runs.c[key]


def _apply(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "=":
        return column == value  # type: ignore[no-any-return]
    if op == "!=":
        return column != value  # type: ignore[no-any-return]
    if op == "<":
        return column < value  # type: ignore[no-any-return]
    if op == "<=":
        return column <= value  # type: ignore[no-any-return]
    if op == ">":
        return column > value  # type: ignore[no-any-return]
    if op == ">=":
        return column >= value  # type: ignore[no-any-return]
    if op == "like":
        return column.like(value)  # type: ignore[no-any-return]
    if op == "ilike":
        return column.ilike(value)  # type: ignore[no-any-return]
    if op == "in":
        return column.in_(list(value))  # type: ignore[no-any-return]
    if op == "not_in":
        return column.not_in(list(value))  # type: ignore[no-any-return]
    raise AssertionError(op)


def _text(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_text(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else str(value)


class _Compiler:
    """Compiles a filter AST to one condition on each run's row.

    Each comparison on params, tags or metrics becomes one aggregate column of a derived
    table per child table (``max(case when key = :k and value = :v then 1 else 0 end)``,
    grouped by run over the rows of the keys named), LEFT JOINed to ``runs``; the filter is
    then plain boolean logic over those columns. The database sees at most three joins,
    whatever the number of comparisons, so the cost grows linearly. (One
    ``IN (subquery)`` per comparison made PostgreSQL plan one semi-join each, and planning
    grew exponentially: 160 comparisons took 24 s; one join per key still took 1.4 s for 100.)
    The first few top-level ANDed comparisons keep that indexed form (``_split``): it is the
    fast plan for the usual short filter, and a few semi-joins plan quickly.
    """

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {kind: [] for kind in _TABLES}
        self.keys: dict[str, set[str]] = {kind: set() for kind in _TABLES}
        self.derived: dict[str, Any] = {}

    def _column(self, kind: str, key: str, condition: Any) -> str:
        table = _TABLES[kind]
        self.keys[kind].add(key)
        matches = table.c.key == key if condition is None else and_(table.c.key == key, condition)
        name = f"c{len(self.columns[kind])}"
        self.columns[kind].append(func.max(case((matches, 1), else_=0)).label(name))
        return name

    def join(self, query: Select[Any]) -> Select[Any]:
        for kind, columns in self.columns.items():
            if not columns:
                continue
            table = _TABLES[kind]
            derived = (
                select(table.c.run_id, *columns)
                .where(table.c.key.in_(sorted(self.keys[kind])))
                .group_by(table.c.run_id)
                .subquery(f"f_{kind}")
            )
            self.derived[kind] = derived
            query = query.outerjoin(derived, derived.c.run_id == runs.c.id)
        return query

    def compile(self, node: Node) -> Callable[[], ColumnElement[bool]]:
        """A deferred condition: call it once ``join`` has built the derived tables."""
        if isinstance(node, (And, Or)):
            parts = [self.compile(p) for p in node.parts]
            combine = and_ if isinstance(node, And) else or_
            return lambda: combine(*(p() for p in parts))
        if isinstance(node, Not):
            part = self.compile(node.part)
            return lambda: not_(part())
        field, op, value = node.field, node.op, node.value
        if field.kind == "attribute":
            column = _attribute_column(field.key)
            if op == "is_null":
                condition = column.is_(None)
            elif op == "is_not_null":
                condition = column.is_not(None)
            else:
                if field.key == "status":
                    value = tuple(v.upper() for v in value) if isinstance(value, tuple) else value.upper()
                condition = _apply(column, op, value)
            return lambda: condition  # type: ignore[no-any-return]
        kind = field.kind
        if op in ("is_null", "is_not_null"):
            name = self._column(kind, field.key, None)
            wanted = 0 if op == "is_null" else 1
        else:
            if kind != "metric":
                value = _text(value)
            name = self._column(kind, field.key, _apply(_TABLES[kind].c.value, op, value))
            wanted = 1
        # a run with none of the keys has no derived row: NULL counts as 0
        return lambda: func.coalesce(self.derived[kind].c[name], 0) == wanted


#: Top-level conditions that stay ``run_id IN (indexed subquery)``: the fast plan for the
#: usual few conditions. Beyond these, PostgreSQL's planning of one semi-join per condition
#: grows exponentially, so the rest go through ``_Compiler``'s aggregates.
SEMI_JOINS = 4


def _split(node: Node | None) -> tuple[list[Compare], Node | None]:
    """The first ``SEMI_JOINS`` top-level ANDed comparisons on params/tags/metrics, and the rest."""
    if node is None:
        return [], None
    parts = list(node.parts) if isinstance(node, And) else [node]
    semi = [
        p for p in parts if isinstance(p, Compare) and p.field.kind != "attribute" and p.op != "is_null"
    ][:SEMI_JOINS]
    rest = [p for p in parts if not any(p is s for s in semi)]
    if not rest:
        return semi, None
    return semi, rest[0] if len(rest) == 1 else And(tuple(rest))


def _semi_join(node: Compare) -> ColumnElement[bool]:
    table = _TABLES[node.field.kind]
    has_key = select(table.c.run_id).where(table.c.key == node.field.key)
    if node.op == "is_not_null":
        return runs.c.id.in_(has_key)
    value = node.value if node.field.kind == "metric" else _text(node.value)
    return runs.c.id.in_(has_key.where(_apply(table.c.value, node.op, value)))


def _value_condition(table: Any, node: Compare) -> ColumnElement[bool]:
    """``node``'s test on the value column of ``table`` (a row of that key exists there)."""
    if node.op == "is_not_null":
        return true()
    value = node.value if node.field.kind == "metric" else _text(node.value)
    return _apply(table.c.value, node.op, value)


def _order(query: Select[Any], order: list[tuple[Field, bool]],
           folded: dict[int, list[Compare]] | None = None) -> Select[Any]:
    """ORDER BY the fields of ``order``; a param/tag/metric field is joined to its table. A
    field the filter already requires (``folded[i]``: its semi-join conditions) is an inner
    join carrying those conditions, so the database can walk that field's (key, value) index
    in order instead of collecting and sorting every match: one row per run either way, as
    (run, key) is unique in those tables."""
    clauses = []
    for i, (field, descending) in enumerate(order):
        if field.kind == "attribute":
            column = _attribute_column(field.key)
        else:
            table = _TABLES[field.kind].alias(f"o{i}")
            on = and_(table.c.run_id == runs.c.id, table.c.key == field.key)
            if folded and i in folded:
                query = query.join(table, and_(on, *[_value_condition(table, c) for c in folded[i]]))
            else:
                query = query.outerjoin(table, on)
            column = table.c.value
        clauses.append((column.desc() if descending else column.asc()).nulls_last())
    clauses += [runs.c.start_time.desc(), runs.c.id]
    return query.order_by(*clauses)


def search_runs(conn: Connection, **options: Any) -> list[Run]:
    """Runs matching a filter (see :func:`_search_runs` for the options); a search the
    database cancels for taking longer than ``timeout`` is bad input naming the setting."""
    from sqlalchemy.exc import DBAPIError

    try:
        return _search_runs(conn, **options)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != "57014":  # query_canceled
            raise
        raise InvalidInput(
            "the search took longer than the search timeout and was cancelled",
            field="tracking.search_timeout",
            hint="narrow the filter, or raise [tracking] search_timeout (CONVEYOR_TRACKING_SEARCH_TIMEOUT)",
        ) from exc


def _search_runs(
    conn: Connection,
    *,
    experiment_ids: Sequence[int] | None = None,
    filter: str = "",
    order_by: Sequence[str] = (),
    max_results: int | None = None,
    offset: int = 0,
    include_deleted: bool = False,
    with_data: bool = True,
    timeout: float | None = None,
) -> list[Run]:
    """Runs matching ``filter`` in the given experiments (all when ``None``), best first.

    ``with_data`` also loads params, latest metrics and tags (three queries for the page).
    ``timeout`` (seconds, PostgreSQL) cancels a search that takes longer, for the rest of
    the transaction (``SET LOCAL statement_timeout``); the cancellation becomes an
    ``InvalidInput`` naming the setting.
    """
    for name, number in (("max_results", max_results), ("offset", offset)):
        if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 0):
            raise InvalidInput(
                f"{name} must be a whole number ≥ 0, not {number!r}", field=name, value=number
            )
    if max_results is not None and max_results > MAX_RESULTS:
        raise InvalidInput(
            f"max_results {max_results:,} is above the limit of {MAX_RESULTS:,}",
            field="max_results",
            value=max_results,
            hint="page through the runs with offset",
        )
    if timeout and conn.dialect.name == "postgresql":
        # an integer in milliseconds: SET does not take bound parameters
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(float(timeout) * 1000))}")
    node = parse_filter(filter)
    order = parse_order_by(list(order_by))
    query = select(*RUN_COLUMNS, runs.c.deleted_at, experiments.c.name.label("experiment")).join(
        experiments, experiments.c.id == runs.c.experiment_id
    )
    conditions: list[ColumnElement[bool]] = []
    semi, rest = _split(node)
    if experiment_ids is not None:
        experiment = runs.c.experiment_id
        if conn.dialect.name == "sqlite" and any(c.op != "not_in" for c in semi):
            # Without statistics SQLite would walk every run of the experiment and probe each
            # condition; "+ 0" hides that index so the (smaller) set of runs matching the
            # metric/param/tag conditions drives the query instead.
            experiment = experiment + 0
        conditions.append(experiment.in_(list(experiment_ids)) if experiment_ids else false())
    if not include_deleted:
        conditions.append(runs.c.deleted_at.is_(None))
    ordered = {(f.kind, f.key): i for i, (f, _) in enumerate(order) if f.kind != "attribute"}
    folded: dict[int, list[Compare]] = {}
    for c in semi:
        if (c.field.kind, c.field.key) in ordered:
            folded.setdefault(ordered[(c.field.kind, c.field.key)], []).append(c)
    conditions += [_semi_join(c) for c in semi if (c.field.kind, c.field.key) not in ordered]
    if rest is not None:
        compiler = _Compiler()
        deferred = compiler.compile(rest)
        query = compiler.join(query)
        conditions.append(deferred())
    query = query.where(and_(true(), *conditions))
    query = _order(query, order, folded)
    if max_results is not None:
        query = query.limit(max_results)
    if offset:
        query = query.offset(offset)
    rows = conn.execute(query).all()
    if not with_data:
        return [RunRepo.from_row(r) for r in rows]
    ids = [r.id for r in rows]
    repo = RunRepo()
    all_params = repo.params_of(conn, ids)
    all_tags = repo.tags_of(conn, ids)
    all_metrics = MetricRepo().latest_of(conn, ids)
    return [
        RunRepo.from_row(r, params=all_params.get(r.id), tags=all_tags.get(r.id), metrics=all_metrics.get(r.id))
        for r in rows
    ]
