"""The permission each MLflow-compatible endpoint needs, checked before its handler runs.

Read for gets and histories; edit for creating runs and logging to them, renaming an
experiment, registering a version; manage for deleting or restoring experiments and runs
and for moving or deleting an alias. A run's rights are its experiment's. Searches are
filtered by their handlers (only what the caller may read). An endpoint that has no entry
here is refused whenever permissions are enforced (fail closed): a route added later cannot
be open by accident — ``tests/server/test_server_roles.py`` checks every route has one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from conveyor.errors import ConveyorError
from conveyor.server import _convert, _experiments, _logging, _models, _runs
from conveyor.server._access import Access
from conveyor.server._http import Fields, run_id_of, strings, text
from conveyor.store import DEFAULT_EXPERIMENT, runs
from conveyor.tracking import Tracker

Pre = Callable[[Access, Tracker, Fields], None]
Post = Callable[[Access, Tracker, Fields, dict[str, Any]], None]


def experiment_of_run(tracker: Tracker, run_id: str) -> int | None:
    return tracker.store.query(lambda conn: conn.execute(select(runs.c.experiment_id).where(runs.c.id == run_id))
                               .scalar(), what=f"reading run {run_id}")


def _on_experiment(level: str, *, default: str | None = None) -> Pre:
    def guard(access: Access, tracker: Tracker, fields: Fields) -> None:
        value = fields.get("experiment_id") or default
        if value is None:
            return  # the handler answers the missing field
        if value == _convert.MLFLOW_DEFAULT_ID:  # look the default experiment up without making it
            try:
                exp_id: int | None = tracker.get_experiment(DEFAULT_EXPERIMENT).id
            except (KeyError, ConveyorError):
                exp_id = None  # the handler makes it: making a new experiment is open to every user
            access.require("experiment", exp_id, level)
            return
        access.require("experiment", _experiments.experiment_id(tracker, value).id, level)

    return guard


def _by_name(access: Access, tracker: Tracker, fields: Fields) -> None:
    name = text(fields, "experiment_name")
    if name is not None:
        access.require("experiment", tracker.get_experiment(name).id, "read")


def _on_run(level: str) -> Pre:
    def guard(access: Access, tracker: Tracker, fields: Fields) -> None:
        exp = experiment_of_run(tracker, run_id_of(fields))
        if exp is not None:  # an unknown run: the handler answers 404
            access.require("experiment", exp, level)

    return guard


def _on_experiments(access: Access, tracker: Tracker, fields: Fields) -> None:
    for value in strings(fields, "experiment_ids"):
        access.require("experiment", _experiments.experiment_id(tracker, value, field="experiment_ids").id, "read")


def _on_model(level: str) -> Pre:
    def guard(access: Access, tracker: Tracker, fields: Fields) -> None:
        name = text(fields, "name")
        if name is not None:
            access.require("model", name, level)

    return guard


def _new_version(access: Access, tracker: Tracker, fields: Fields) -> None:
    _on_model("edit")(access, tracker, fields)
    source = text(fields, "source")
    if source is not None:  # registering a run's files needs the right to read that run
        run_id, _ = _models._source(tracker, source, text(fields, "run_id"))
        exp = experiment_of_run(tracker, run_id)
        if exp is not None:
            access.require("experiment", exp, "read")


def _open(access: Access, tracker: Tracker, fields: Fields) -> None:
    """Creating a new experiment or model, or a search its handler filters: every user."""


def _experiment_made(access: Access, tracker: Tracker, fields: Fields, result: dict[str, Any]) -> None:
    access.created("experiment", result["experiment_id"])


def _model_made(access: Access, tracker: Tracker, fields: Fields, result: dict[str, Any]) -> None:
    access.created("model", result["registered_model"]["name"])


#: handler → (check before, hook after)
GUARDS: dict[Callable[..., Any], tuple[Pre, Post | None]] = {
    _experiments.create: (_open, _experiment_made),
    _experiments.get: (_on_experiment("read"), None),
    _experiments.get_by_name: (_by_name, None),
    _experiments.search: (_open, None),
    _experiments.update_: (_on_experiment("edit"), None),
    _experiments.delete: (_on_experiment("manage"), None),
    _experiments.restore: (_on_experiment("manage"), None),
    _runs.create: (_on_experiment("edit", default="0"), None),
    _runs.update_: (_on_run("edit"), None),
    _runs.get: (_on_run("read"), None),
    _runs.search: (_on_experiments, None),
    _runs.delete: (_on_run("manage"), None),
    _runs.restore: (_on_run("manage"), None),
    _logging.log_metric: (_on_run("edit"), None),
    _logging.log_param: (_on_run("edit"), None),
    _logging.set_tag: (_on_run("edit"), None),
    _logging.delete_tag: (_on_run("edit"), None),
    _logging.log_batch: (_on_run("edit"), None),
    _logging.log_inputs: (_on_run("edit"), None),
    _logging.get_history: (_on_run("read"), None),
    _logging.search_logged_models: (_on_experiments, None),
    _models.create_model: (_open, _model_made),
    _models.get_model: (_on_model("read"), None),
    _models.search_models: (_open, None),
    _models.create_version: (_new_version, None),
    _models.get_version: (_on_model("read"), None),
    _models.search_versions: (_open, None),
    _models.set_alias: (_on_model("manage"), None),
    _models.get_alias: (_on_model("read"), None),
    _models.delete_alias: (_on_model("manage"), None),
}


def run_guarded(handler: Callable[[Tracker, Fields], dict[str, Any]], access: Access, tracker: Tracker,
                fields: Fields) -> dict[str, Any]:
    """``handler(tracker, fields)`` after its permission check (when permissions are enforced)."""
    from conveyor.server._errors import ApiError

    if not access.enforced:
        return handler(tracker, fields)
    rule = GUARDS.get(handler)
    if rule is None:
        raise ApiError("PERMISSION_DENIED", "This endpoint has no permission rule, so it is refused while "
                       "authentication is on (a conveyor bug: please report it).")
    pre, post = rule
    pre(access, tracker, fields)
    result = handler(tracker, fields)
    if post is not None:
        post(access, tracker, fields, result)
    return result
