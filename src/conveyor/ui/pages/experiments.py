"""The experiments list (the home page): each experiment with its run count and last start."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from conveyor.ui._access import allowed
from conveyor.ui._render import render

NAV = ("Experiments", "/experiments")


def _counts(tracker: Any) -> dict[int, tuple[int, int | None]]:
    """Per experiment id: (runs not deleted, latest start time), in one grouped query."""
    from conveyor.store import runs

    query = (
        select(runs.c.experiment_id, func.count(), func.max(runs.c.start_time))
        .where(runs.c.deleted_at.is_(None))
        .group_by(runs.c.experiment_id)
    )
    rows = tracker.store.query(lambda conn: list(conn.execute(query).all()), what="counting the runs of experiments")
    return {exp_id: (n, last) for exp_id, n, last in rows}


def experiments_page(request: Request) -> Response:
    tracker = request.app.state.tracker
    archived = request.query_params.get("archived") == "1"
    found = [e for e in tracker.list_experiments(include_archived=archived)
             if allowed(request, "experiment", str(e.id))]
    counts = _counts(tracker)
    rows = [(e, *counts.get(e.id, (0, None))) for e in found]
    return render(request, "experiments.html", title="Experiments", rows=rows, archived=archived)


def home(request: Request) -> Response:
    return RedirectResponse("/experiments", status_code=307)


routes = [
    Route("/", home, methods=["GET"]),
    Route("/experiments", experiments_page, methods=["GET"]),
]
