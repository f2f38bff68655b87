"""Helpers shared by the data, pipeline, model and monitoring pages.

Charts are drawn by ``conveyor.monitoring._charts`` (the drift report's, so the report and
the pages read the same) and handed to templates as ``Markup``: those functions escape
every text they put in. ``/assets/charts.css`` serves their styles (the UI's CSP allows
stylesheets from this origin only, not inline ``<style>``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conveyor.errors import ConveyorError, NotFound


def svg(markup: str) -> Markup:
    """SVG built by the chart and graph functions (which escape all data) as template markup."""
    return Markup(markup)  # noqa: S704 (built from escaped parts only)


def histogram(dist: dict[str, Any], *, label: str, names: tuple[str, str] = ("reference", "current"),
              width: int = 340, height: int = 210) -> Markup:
    from conveyor.monitoring._charts import histogram as draw

    return svg(draw(dist, label=label, names=names, width=width, height=height))


def line(points: list[tuple[float, float]], **kwargs: Any) -> Markup:
    from conveyor.monitoring._charts import line as draw

    return svg(draw(points, **kwargs))


def charts_css(request: Request) -> Response:
    from conveyor.monitoring._charts import CSS

    return Response(CSS, media_type="text/css", headers={"cache-control": "max-age=3600"})


ASSET_ROUTES = [Route("/assets/charts.css", charts_css, methods=["GET"])]


def not_found(what: str, name: Any, exc: ConveyorError | None = None) -> NotFound:
    """A 404 for ``what`` named ``name`` (an invalid name is as absent as an unknown one)."""
    return NotFound(what, str(name), hint=getattr(exc, "hint", None) or None)


class Cache:
    """A small thread-safe LRU of computed values keyed by content digests (immutable)."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()  # guards _items

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


SUMMARIES = Cache()


def table_summary(tracker: Any, version: Any) -> Any:
    """The monitoring ``Summary`` of a table version (for its histograms), cached by digest."""

    def make() -> Any:
        from conveyor.data import load
        from conveyor.monitoring import summarize

        return summarize(load(version.ref, tracker=tracker), label=version.ref)

    return SUMMARIES.get(("table", version.digest), make)


def column_distribution(ref_col: Any, cur_col: Any | None) -> dict[str, Any]:
    """Shares per bin/category of one column, or of two on shared bins (``cur_col``)."""
    from conveyor.monitoring._report import distribution

    dist = distribution(ref_col, cur_col if cur_col is not None else ref_col)
    if cur_col is None:
        dist["current"] = None
    return dist
