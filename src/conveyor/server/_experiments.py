"""MLflow's experiment endpoints over conveyor's experiments.

MLflow "deletes" an experiment into a deleted lifecycle stage it can restore from; in
conveyor that is archiving, which the CLI shows and ``experiments restore`` undoes.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from sqlalchemy import update

from conveyor.entities import Experiment
from conveyor.errors import AlreadyExists
from conveyor.server import _access, _convert
from conveyor.server._errors import ApiError, invalid
from conveyor.server._http import Fields, integer, key_values, strings, text
from conveyor.server._paging import page, page_token
from conveyor.store import DEFAULT_EXPERIMENT, experiments, parse_filter
from conveyor.tracking import Tracker

VIEW_TYPES = {"ACTIVE_ONLY", "DELETED_ONLY", "ALL", "1", "2", "3"}


def experiment_id(tracker: Tracker, value: Any, *, field: str = "experiment_id") -> Experiment:
    """The conveyor experiment an MLflow experiment id names ("0" is the default one)."""
    if value == _convert.MLFLOW_DEFAULT_ID:
        tracker.store.transaction(lambda conn: tracker.store.experiments.get_or_create(conn, DEFAULT_EXPERIMENT),
                                  what="creating the default experiment")
        return tracker.get_experiment(DEFAULT_EXPERIMENT)
    if isinstance(value, int) and not isinstance(value, bool):
        return tracker.get_experiment(value)
    if not isinstance(value, str) or not value.isdigit():
        raise invalid(f"Invalid value {value!r} for parameter '{field}': an experiment id is a number.")
    return tracker.get_experiment(int(value))


def create(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    name = text(fields, "name", required=True)
    assert name is not None
    tags = key_values(fields, "tags")
    try:
        exp = tracker.create_experiment(name, tags=tags)
    except AlreadyExists:
        raise ApiError("RESOURCE_ALREADY_EXISTS", f"Experiment '{name}' already exists.") from None
    return {"experiment_id": str(exp.id)}


def get(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    exp = experiment_id(tracker, text(fields, "experiment_id", required=True))
    return {"experiment": _convert.experiment(exp)}


def get_by_name(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    name = text(fields, "experiment_name", required=True)
    return {"experiment": _convert.experiment(tracker.get_experiment(str(name)))}


def _matches(exp: Experiment, node: Any) -> bool:
    if node is None:
        return True
    if type(node).__name__ == "And":
        return all(_matches(exp, p) for p in node.parts)
    if type(node).__name__ != "Compare" or node.op not in ("=", "!=", "like", "ilike"):
        raise invalid("An experiment filter joins `name` or `tags.<key>` comparisons (=, !=, LIKE, ILIKE) with AND.")
    if node.field.kind == "attribute" and node.field.key == "name":
        actual: str | None = exp.name
    elif node.field.kind == "tag":
        actual = exp.tags.get(node.field.key)
    else:
        raise invalid(f"Invalid attribute key '{node.field.key}' in an experiment filter: use name or tags.<key>.")
    if actual is None:
        return False
    value = str(node.value)
    if node.op == "=":
        return actual == value
    if node.op == "!=":
        return actual != value
    pattern = value.replace("%", "*").replace("_", "?")
    if node.op == "ilike":
        return fnmatch.fnmatchcase(actual.lower(), pattern.lower())
    return fnmatch.fnmatchcase(actual, pattern)


def search(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    view = str(fields.get("view_type") or "ACTIVE_ONLY")
    if view not in VIEW_TYPES:
        raise invalid(f"Invalid value {view!r} for parameter 'view_type': ACTIVE_ONLY, DELETED_ONLY or ALL.")
    max_results = integer(fields, "max_results", default=1000)
    assert max_results is not None
    if not 1 <= max_results <= 50000:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results': between 1 and 50000.")
    offset = page_token(text(fields, "page_token"))
    node = parse_filter(text(fields, "filter") or "")
    wanted = []
    every = tracker.list_experiments(include_archived=True)
    allowed = _access.readable("experiment", [e.id for e in every])  # only what the caller may read
    for listed in every:
        if str(listed.id) not in allowed:
            continue
        if (view in ("ACTIVE_ONLY", "1") and listed.archived) or (view in ("DELETED_ONLY", "2") and not listed.archived):
            continue
        exp = tracker.get_experiment(listed.id)  # with tags
        if _matches(exp, node):
            wanted.append(exp)
    for order in reversed(strings(fields, "order_by")):
        key, _, direction = order.strip().partition(" ")
        attr = {"name": "name", "experiment_id": "id", "creation_time": "created_at",
                "last_update_time": "created_at"}.get(key.removeprefix("attributes."))
        if attr is None:
            raise invalid(f"Invalid order_by clause {order!r}: order by name, experiment_id or creation_time.")
        wanted.sort(key=lambda e: getattr(e, attr), reverse=direction.strip().upper() == "DESC")
    chosen, token = page(wanted, offset, max_results)
    out: dict[str, Any] = {"experiments": [_convert.experiment(e) for e in chosen]}
    if token:
        out["next_page_token"] = token
    return out


def _set(tracker: Tracker, fields: Fields, **values: Any) -> dict[str, Any]:
    exp = experiment_id(tracker, text(fields, "experiment_id", required=True))
    tracker.store.transaction(  # idempotent: a plain retry through a database blink
        lambda conn: conn.execute(update(experiments).where(experiments.c.id == exp.id).values(**values)),
        what=f"updating experiment {exp.id}")
    return {}


def update_(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    new_name = text(fields, "new_name")
    if new_name is None:
        return {}
    try:
        tracker.get_experiment(new_name)
    except KeyError:
        return _set(tracker, fields, name=new_name)
    raise ApiError("RESOURCE_ALREADY_EXISTS", f"Experiment '{new_name}' already exists.")


def delete(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    return _set(tracker, fields, archived=True)


def restore(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    return _set(tracker, fields, archived=False)
