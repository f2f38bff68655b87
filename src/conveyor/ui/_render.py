"""Templates: one autoescaping Jinja2 environment; every page is rendered through :func:`render`.

Autoescape is on for every template, so names, tags, params and artifact paths are text,
never markup. Data for scripts goes into ``<script type="application/json">`` blocks through
the ``tojson`` filter (which escapes ``<``, ``>``, ``&`` and quotes), and the Content-Security-Policy
allows scripts only from ``/static`` — an injected inline script would not run even if it slipped
through.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _number(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("conveyor.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["duration"] = _duration
    env.filters["number"] = _number
    env.filters["size"] = _size
    env.globals["urlencode"] = urlencode
    return env


ENV = _environment()


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page: the template with the request, the navigation and the signed-in user."""
    from conveyor.ui.pages import navigation

    state = request.app.state
    page = ENV.get_template(template).render(
        request=request,
        nav=navigation(),
        user=request.scope.get("conveyor.user"),
        auth=state.check_token is not None,
        status=status,
        **context,
    )
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)
