"""The runs table of an experiment and the page of one run (params, tags, environment,
metric charts, artifacts with previews).

Everything the table shows is in its URL: ``filter`` (conveyor's filter language),
``order`` (e.g. ``metrics.acc desc``), ``col`` (repeated: ``params.C``, ``metrics.loss``,
``tags.team``), ``page`` and ``size``. Paging is on the server (LIMIT/OFFSET): a page reads
``size + 1`` runs, never the whole experiment, so 100,000 runs page as fast as 100.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conveyor.errors import FilterSyntaxError, InvalidInput, NotFound
from conveyor.ui._access import require
from conveyor.ui._render import render

SIZES = (25, 50, 100, 200)
#: Columns are offered from the keys of this many most recent runs of the experiment.
KEY_SAMPLE = 2000
#: Attribute columns a table can sort by (the filter language's names).
SORTABLE_ATTRIBUTES = {"name": "Name", "status": "Status", "start_time": "Started (UTC)"}


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, not {raw!r}", field=name, value=raw) from None
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}, not {value}", field=name, value=value)
    return value


def _keys(tracker: Any, experiment_id: int) -> dict[str, list[str]]:
    """Param, metric and tag keys of the experiment's most recent runs, sorted."""
    from conveyor.store import latest_metrics, params, run_tags, runs

    recent = (
        select(runs.c.id).where(runs.c.experiment_id == experiment_id, runs.c.deleted_at.is_(None))
        .order_by(runs.c.start_time.desc()).limit(KEY_SAMPLE).scalar_subquery()
    )

    def read(conn: Any) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for kind, table in (("params", params), ("metrics", latest_metrics), ("tags", run_tags)):
            query = select(table.c.key).where(table.c.run_id.in_(recent)).distinct().order_by(table.c.key)
            out[kind] = [k for k in conn.execute(query).scalars() if not (kind == "tags" and k.startswith("conveyor."))]
        return out

    return tracker.store.query(read, what="reading the column keys of recent runs")  # type: ignore[no-any-return]


def _column_value(run: Any, column: str) -> Any:
    kind, _, key = column.partition(".")
    source = {"params": run.params, "metrics": run.metrics, "tags": run.tags}[kind]
    return source.get(key)


def runs_table(request: Request) -> Response:
    from conveyor.store import search_runs

    tracker = request.app.state.tracker
    experiment_id = request.path_params["experiment_id"]
    try:
        experiment = tracker.get_experiment(int(experiment_id))
    except (NotFound, ValueError):
        raise HTTPException(404) from None
    require(request, "experiment", str(experiment.id))
    query = request.query_params
    text = query.get("filter", "")
    order = query.get("order", "").strip()
    size = _int(request, "size", 50, 1, 1000)
    page = _int(request, "page", 1, 1, 10_000_000)
    keys = _keys(tracker, experiment.id)
    chosen = [c for c in query.getlist("col") if c.partition(".")[0] in ("params", "metrics", "tags") and c.partition(".")[2]]
    if not chosen:
        chosen = [f"params.{k}" for k in keys["params"][:6]] + [f"metrics.{k}" for k in keys["metrics"][:6]]
    error: dict[str, Any] | None = None
    found: list[Any] = []
    try:
        found = tracker.store.query(
            lambda conn: search_runs(conn, experiment_ids=[experiment.id], filter=text,
                                     order_by=[order] if order else [], max_results=size + 1,
                                     offset=(page - 1) * size, timeout=tracker.settings.search_timeout),
            what=f"searching the runs of experiment {experiment.name!r}")
    except FilterSyntaxError as exc:
        position = max(0, min(exc.position, len(exc.text)))
        error = {"message": str(exc).split(" at position ")[0], "position": position, "text": exc.text,
                 "before": exc.text[:position], "at": exc.text[position : position + 1] or " ",
                 "after": exc.text[position + 1 :], "hint": exc.hint,
                 "field": "order" if order and exc.text == order and exc.text != text else "filter"}
    except InvalidInput as exc:
        field = "order" if exc.field in ("order_by", "order") or (order and order in str(exc)) else "filter"
        error = {"message": str(exc), "position": None, "text": None, "hint": exc.hint, "field": field}
    more = len(found) > size
    shown = found[:size]
    rows = [(r, [_column_value(r, c) for c in chosen]) for r in shown]

    def link(**changes: Any) -> str:
        params: list[tuple[str, str]] = []
        current = {"filter": text, "order": order, "size": str(size), "page": str(page)}
        current.update({k: str(v) for k, v in changes.items() if k != "col"})
        for k, v in current.items():
            if v and not (k == "size" and v == "50") and not (k == "page" and v == "1"):
                params.append((k, v))
        for c in changes.get("col", query.getlist("col")):
            params.append(("col", c))
        from urllib.parse import urlencode

        return f"/experiments/{experiment.id}?{urlencode(params)}"

    def sort_link(column: str) -> tuple[str, str | None]:
        field, _, direction = order.partition(" ")
        if field == column:
            desc = direction.strip().lower() != "asc"
            return link(order=f"{column} {'asc' if desc else 'desc'}", page=1), "descending" if desc else "ascending"
        return link(order=f"{column} desc", page=1), None

    return render(
        request, "runs.html", title=experiment.name, experiment=experiment, rows=rows, columns=chosen,
        keys=keys, filter=text, order=order, size=size, page=page, more=more, first=(page - 1) * size + 1,
        error=error, link=link, sort_link=sort_link, sizes=SIZES, sortable=SORTABLE_ATTRIBUTES,
        picked=set(query.getlist("col")), key_sample=KEY_SAMPLE,
    )


routes = [
    Route("/experiments/{experiment_id}", runs_table, methods=["GET"]),
]
