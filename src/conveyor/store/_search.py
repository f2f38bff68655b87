"""Run search: the filter AST compiled to SQL with bound parameters, ordered and paged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, and_, false, not_, or_, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from conveyor.entities import Run
from conveyor.store._experiments import experiments
from conveyor.store._filter import And, Field, Node, Not, Or, parse_filter, parse_order_by
from conveyor.store._metrics import MetricRepo, latest_metrics
from conveyor.store._runs import RUN_COLUMNS, RunRepo, params, run_tags, runs

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


def _compile(node: Node) -> ColumnElement[bool]:
    if isinstance(node, And):
        return and_(*(_compile(p) for p in node.parts))
    if isinstance(node, Or):
        return or_(*(_compile(p) for p in node.parts))
    if isinstance(node, Not):
        return not_(_compile(node.part))
    field, op, value = node.field, node.op, node.value
    if field.kind == "attribute":
        column = _attribute_column(field.key)
        if op == "is_null":
            return column.is_(None)  # type: ignore[no-any-return]
        if op == "is_not_null":
            return column.is_not(None)  # type: ignore[no-any-return]
        if field.key == "status" and isinstance(value, (str, tuple)):
            value = tuple(v.upper() for v in value) if isinstance(value, tuple) else value.upper()
        return _apply(column, op, value)
    table = _TABLES[field.kind]
    has_key = select(table.c.run_id).where(table.c.key == field.key)
    if op == "is_null":
        return runs.c.id.not_in(has_key)
    if op == "is_not_null":
        return runs.c.id.in_(has_key)
    if field.kind != "metric":
        value = _text(value)
    return runs.c.id.in_(has_key.where(_apply(table.c.value, op, value)))


def _uses_child_tables(node: Node | None) -> bool:
    if node is None:
        return False
    if isinstance(node, (And, Or)):
        return any(_uses_child_tables(p) for p in node.parts)
    if isinstance(node, Not):
        return False
    return node.field.kind != "attribute" and node.op not in ("is_null", "not_in")


def _order(query: Select[Any], order: list[tuple[Field, bool]]) -> Select[Any]:
    clauses = []
    for i, (field, descending) in enumerate(order):
        if field.kind == "attribute":
            column = _attribute_column(field.key)
        else:
            table = _TABLES[field.kind].alias(f"o{i}")
            query = query.outerjoin(table, and_(table.c.run_id == runs.c.id, table.c.key == field.key))
            column = table.c.value
        clauses.append((column.desc() if descending else column.asc()).nulls_last())
    clauses += [runs.c.start_time.desc(), runs.c.id]
    return query.order_by(*clauses)


def search_runs(
    conn: Connection,
    *,
    experiment_ids: Sequence[int] | None = None,
    filter: str = "",
    order_by: Sequence[str] = (),
    max_results: int | None = None,
    offset: int = 0,
    include_deleted: bool = False,
    with_data: bool = True,
) -> list[Run]:
    """Runs matching ``filter`` in the given experiments (all when ``None``), best first.

    ``with_data`` also loads params, latest metrics and tags (three queries for the page).
    """
    node = parse_filter(filter)
    order = parse_order_by(list(order_by))
    query = select(*RUN_COLUMNS, runs.c.deleted_at, experiments.c.name.label("experiment")).join(
        experiments, experiments.c.id == runs.c.experiment_id
    )
    conditions: list[ColumnElement[bool]] = []
    if experiment_ids is not None:
        experiment = runs.c.experiment_id
        if conn.dialect.name == "sqlite" and _uses_child_tables(node):
            # Without statistics SQLite would walk every run of the experiment and probe each
            # condition; "+ 0" hides that index so the (smaller) set of runs matching the
            # metric/param/tag conditions drives the query instead.
            experiment = experiment + 0
        conditions.append(experiment.in_(list(experiment_ids)) if experiment_ids else false())
    if not include_deleted:
        conditions.append(runs.c.deleted_at.is_(None))
    if node is not None:
        conditions.append(_compile(node))
    query = query.where(and_(true(), *conditions))
    query = _order(query, order)
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
