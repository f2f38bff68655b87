"""Models: the registered models, one model's versions, aliases and alias timeline (who
moved it, when, why, with the gate evidence — the confidence interval of the comparison
with the champion drawn, and the slices), and one version's model card and lineage."""

from __future__ import annotations

import html
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conveyor.errors import NotFound
from conveyor.ui._access import allowed, require
from conveyor.ui._kit import svg
from conveyor.ui._render import render

NAV = ("Models", "/models")


def _registry(request: Request) -> Any:
    from conveyor.registry import Registry

    return Registry(request.app.state.tracker)


def models_page(request: Request) -> Response:
    models = [m for m in _registry(request).list_models() if allowed(request, "model", m.name)]
    return render(request, "models.html", title="Models", models=models)


def ci_plot(evidence: dict[str, Any], width: int = 420, height: int = 92) -> str:
    """The bootstrap confidence interval of the improvement over the champion, with 0 and the
    margin the gate required, on an axis with tick values."""
    from conveyor.monitoring._charts import nice_ticks, tick_text

    e = html.escape
    low, high, observed = evidence["ci_low"], evidence["ci_high"], evidence.get("observed_improvement")
    margin = float(evidence.get("margin") or 0.0)
    bound = -margin if evidence.get("mode") == "non_inferior" else margin
    values = [low, high, 0.0, bound] + ([observed] if observed is not None else [])
    ticks = nice_ticks(min(values), max(values), 5)
    lo, hi = ticks[0], ticks[-1] if ticks[-1] > ticks[0] else ticks[0] + 1
    x0, x1, axis_y = 16, width - 16, height - 30

    def x(v: float) -> float:
        return x0 + (v - lo) / (hi - lo) * (x1 - x0)

    metric = str(evidence.get("metric", "metric"))
    out = [f"<svg class='chart ci' width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img' "
           f"aria-label='{e(metric, quote=True)} improvement confidence interval'>",
           f"<title>{e(metric)} improvement over the champion: [{low:+.4g}, {high:+.4g}]</title>",
           f"<g class='axis x-axis'><line class='domain' x1='{x0}' x2='{x1}' y1='{axis_y}' y2='{axis_y}'/>"]
    for t in ticks:
        out.append(f"<g class='tick' data-value='{t:g}'><line x1='{x(t):.1f}' x2='{x(t):.1f}' y1='{axis_y}' "
                   f"y2='{axis_y + 4}'/><text x='{x(t):.1f}' y='{axis_y + 15}' text-anchor='middle'>"
                   f"{tick_text(t)}</text></g>")
    out.append(f"<text class='axis-label' x='{(x0 + x1) / 2}' y='{height - 2}' text-anchor='middle'>"
               f"{e(metric)} improvement (candidate − champion)</text></g>")
    out.append(f"<line class='baseline zero' x1='{x(0):.1f}' x2='{x(0):.1f}' y1='8' y2='{axis_y}'>"
               "<title>no difference</title></line>")
    out.append(f"<line class='threshold' x1='{x(bound):.1f}' x2='{x(bound):.1f}' y1='8' y2='{axis_y}' "
               f"data-value='{bound:g}'><title>required bound {bound:+g}</title></line>")
    yc = axis_y / 2 + 4
    out.append(f"<line class='interval' x1='{x(low):.1f}' x2='{x(high):.1f}' y1='{yc}' y2='{yc}' "
               f"data-low='{low!r}' data-high='{high!r}'/>")
    for v in (low, high):
        out.append(f"<line class='interval' x1='{x(v):.1f}' x2='{x(v):.1f}' y1='{yc - 7}' y2='{yc + 7}'/>")
    if observed is not None:
        out.append(f"<circle class='point' cx='{x(observed):.1f}' cy='{yc}' r='4' data-value='{observed!r}'>"
                   f"<title>observed {observed:+.4g}</title></circle>")
    out.append(f"<text x='{x(low):.1f}' y='{yc - 10}' text-anchor='middle'>{low:+.3g}</text>"
               f"<text x='{x(high):.1f}' y='{yc - 10}' text-anchor='middle'>{high:+.3g}</text></svg>")
    return "".join(out)


def _evidence(registry: Any, name: str) -> dict[str, Any]:
    """Stored gate evaluations of ``name`` by id, each with its CI plots."""
    from conveyor.gates._evaluate import evaluations

    out = {}
    for ev in evaluations(registry, name):
        plots = [(c, svg(ci_plot(c.evidence))) for c in ev.checks
                 if c.kind == "compare" and c.evidence.get("ci_low") is not None and c.evidence.get("ci_high") is not None]
        out[ev.id] = {"evaluation": ev, "plots": plots}
    return out


def model_page(request: Request) -> Response:
    name = request.path_params["name"]
    require(request, "model", name)
    registry = _registry(request)
    model = registry.get_model(name)
    versions = list(reversed(registry.list_versions(name, include_failed=True)))
    events = list(reversed(registry.history(name)))
    evidence = _evidence(registry, name)
    timeline = [{"event": ev, "gate": evidence.get(ev.evaluation_id) if ev.evaluation_id else None}
                for ev in events]
    return render(request, "model.html", title=f"Model {name}", model=model, versions=versions,
                  timeline=timeline, name=name)


def _card_html(registry: Any, name: str, version: int, settings: Any) -> Any:
    from markdown_it import MarkdownIt
    from markupsafe import Markup

    from conveyor.registry import model_card

    text = model_card(f"models:/{name}/{version}", registry=registry, settings=settings)
    # raw HTML in the card (names, reasons, …) stays text: MarkdownIt escapes it with html=False
    return Markup(MarkdownIt("commonmark", {"html": False}).enable("table").render(text))  # noqa: S704


def version_page(request: Request) -> Response:
    name, number = request.path_params["name"], request.path_params["version"]
    require(request, "model", name)
    registry = _registry(request)
    if not number.isdigit():
        raise NotFound("model version", f"{name}/{number}", hint="versions are numbers")
    mv = registry.get_version(name, int(number))
    settings = getattr(request.app.state.tracker, "project_settings", None)
    if settings is None:
        from conveyor.settings import Settings

        settings = Settings.load(env={})
    evidence = [v for v in _evidence(registry, name).values() if v["evaluation"].version == mv.version]
    events = [e for e in reversed(registry.history(name)) if e.version == mv.version]
    return render(request, "model_version.html", title=f"{name} version {mv.version}", name=name, mv=mv,
                  card=_card_html(registry, name, mv.version, settings), evidence=evidence, events=events)


routes = [
    Route("/models", models_page, methods=["GET"]),
    Route("/models/{name}", model_page, methods=["GET"]),
    Route("/models/{name}/versions/{version}", version_page, methods=["GET"]),
]
