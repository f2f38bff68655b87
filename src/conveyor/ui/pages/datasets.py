"""Data sets: the list, one data set's versions, one version (schema, per-column histograms
against the previous version, validation anomalies), and the diff between two versions."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conveyor.errors import InvalidInput, NotFound
from conveyor.ui._access import allowed, require
from conveyor.ui._kit import ASSET_ROUTES, column_distribution, histogram, not_found, table_summary
from conveyor.ui._render import render

NAV = ("Data", "/datasets")
MAX_HISTOGRAMS = 60


def _versions(tracker: Any, name: str) -> list[Any]:
    from conveyor.data import versions

    try:
        found = versions(name, tracker=tracker)
    except InvalidInput as exc:
        raise not_found("data set", name, exc) from None
    if not found:
        raise NotFound("data set", name, hint="`conveyor data add PATH --name N` creates one")
    return found


def _version(found: list[Any], name: str, number: str) -> Any:
    version = next((v for v in found if str(v.version) == number), None)
    if version is None:
        raise NotFound("data set version", f"{name}@{number}",
                       hint=f"versions: {', '.join(str(v.version) for v in found)}")
    return version


def datasets_page(request: Request) -> Response:
    from conveyor.data import list_datasets

    tracker = request.app.state.tracker
    rows = [v for v in list_datasets(tracker=tracker) if allowed(request, "data", v.name)]
    return render(request, "datasets.html", title="Data sets", rows=rows)


def dataset_page(request: Request) -> Response:
    name = request.path_params["name"]
    require(request, "data", name)
    found = _versions(request.app.state.tracker, name)
    return render(request, "dataset.html", title=f"Data set {name}", name=name, versions=list(reversed(found)))


def _columns(profile: dict[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    return list(((profile or {}).get("columns") or {}).items())


def _histograms(tracker: Any, a: Any | None, b: Any) -> list[tuple[str, Any]]:
    """One histogram per column of ``b`` (a table), overlaid on ``a``'s where it has the column."""
    if not b.is_table:
        return []
    cur = table_summary(tracker, b)
    ref = table_summary(tracker, a) if a is not None and a.is_table else None
    out = []
    for column in list(cur.columns)[:MAX_HISTOGRAMS]:
        if ref is not None and column in ref.columns and ref[column].kind == cur[column].kind:
            dist = column_distribution(ref[column], cur[column])
            out.append((column, histogram(dist, label=column, names=(f"v{a.version}", f"v{b.version}"))))
        else:
            out.append((column, histogram(column_distribution(cur[column], None), label=column,
                                          names=(f"v{b.version}", ""))))
    return out


def version_page(request: Request) -> Response:
    from conveyor.data import validate

    name, number = request.path_params["name"], request.path_params["version"]
    require(request, "data", name)
    tracker = request.app.state.tracker
    found = _versions(tracker, name)
    version = _version(found, name, number)
    previous = next((v for v in reversed(found) if v.version < version.version), None)
    anomalies: list[Any] = []
    if version.is_table and previous is not None and previous.is_table:
        anomalies = validate(version.ref, against=previous.ref, tracker=tracker)
    return render(request, "dataset_version.html", title=f"{version.ref}", name=name, version=version,
                  previous=previous, columns=_columns(version.profile), anomalies=anomalies,
                  histograms=_histograms(tracker, previous, version), versions=found)


def diff_page(request: Request) -> Response:
    from conveyor.data import diff

    name = request.path_params["name"]
    require(request, "data", name)
    tracker = request.app.state.tracker
    found = _versions(tracker, name)
    params = request.query_params
    if not params.get("a") or not params.get("b"):
        raise InvalidInput("choose two versions to compare", field="a", value=None,
                           hint=f"/datasets/{name}/diff?a={found[0].version}&b={found[-1].version}")
    a, b = _version(found, name, params["a"]), _version(found, name, params["b"])
    result = diff(a.ref, b.ref, tracker=tracker)
    return render(request, "dataset_diff.html", title=f"{a.ref} → {b.ref}", name=name, a=a, b=b, diff=result,
                  histograms=_histograms(tracker, a, b), versions=found)


routes = [
    *ASSET_ROUTES,
    Route("/datasets", datasets_page, methods=["GET"]),
    Route("/datasets/{name}", dataset_page, methods=["GET"]),
    Route("/datasets/{name}/diff", diff_page, methods=["GET"]),
    Route("/datasets/{name}/{version}", version_page, methods=["GET"]),
]
