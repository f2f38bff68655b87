"""The UI's Starlette application, mounted by the server at ``/`` after every API route."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from conveyor.errors import ConveyorError, InvalidInput, NotFound
from conveyor.ui._access import Forbidden
from conveyor.ui._render import render

#: Paths that belong to an API: an unknown one there answers in that API's shape, not with a page.
API_PREFIXES = ("/api/", "/ajax-api/")

log = logging.getLogger("conveyor.server.ui")


class _AllowAll:
    def allows(self, user: Any, kind: str, resource: str | None, level: str) -> bool:
        return True


def create_ui(
    tracker: Any,
    *,
    policy: Callable[[], Any] | None = None,
    check_token: Callable[[str], str | None] | None = None,
    sessions: Any | None = None,
    api_not_found: Callable[[Request, Exception], Awaitable[Response]] | None = None,
) -> Starlette:
    """The UI over one open ``Tracker``.

    ``policy`` returns the current permission policy (the server passes its ``/api/v1``
    policy; everything is allowed when None). ``check_token`` turns a token into the name of
    its owner or None; when given, the login page signs users in with it (auth on).
    ``sessions`` (the server's :class:`conveyor.server._auth.Sessions`) adds sign-in with user
    and password, which issues a session token, and sign-out revoking it; its ``check_token``
    serves when ``check_token`` is not given.
    ``api_not_found`` answers unknown paths under ``/api/`` and ``/ajax-api/``.
    """
    from conveyor.ui.pages import routes

    allow_all = _AllowAll()

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith(API_PREFIXES) and api_not_found is not None:
            return await api_not_found(request, exc)
        if exc.status_code == 404:
            return render(request, "error.html", 404, title="Not found",
                          message=f"There is no page at {request.url.path}.")
        if exc.status_code == 405:
            return render(request, "error.html", 405, title="Method not allowed",
                          message=f"{request.method} is not allowed here.")
        return render(request, "error.html", exc.status_code, title="Bad request", message=str(exc.detail))

    async def on_forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Forbidden)
        return render(request, "error.html", 403, title="Forbidden", message=exc.message)

    async def on_conveyor(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConveyorError)
        if isinstance(exc, NotFound):
            return render(request, "error.html", 404, title="Not found", message=str(exc))
        if isinstance(exc, InvalidInput):
            return render(request, "error.html", 400, title="Bad request", message=str(exc))
        return render(request, "error.html", 503, title="Unavailable", message=str(exc))

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render(request, "error.html", 500, title="Server error",
                      message="Something went wrong on the server; its log has the details.")

    app = Starlette(
        routes=[Mount("/static", app=StaticFiles(packages=[("conveyor.ui", "static")]), name="static"), *routes()],
        exception_handlers={HTTPException: on_http, Forbidden: on_forbidden, ConveyorError: on_conveyor,
                            Exception: on_crash},
    )
    app.state.tracker = tracker
    app.state.policy = policy if policy is not None else (lambda: allow_all)
    app.state.check_token = check_token if check_token is not None else getattr(sessions, "check_token", None)
    app.state.sessions = sessions
    return app


__all__ = ["API_PREFIXES", "create_ui"]
