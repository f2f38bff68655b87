"""The one error shape of ``/api/v1``:
``{"error": {"code": "NOT_FOUND", "message": "…", "field": "run_id" | null}}``.

Handlers raise :class:`conveyor.errors.ConveyorError` subclasses (or :class:`ApiV1Error`);
this module maps them to a status and a code in one place. A request that does not match
its schema is a 400 naming the first bad field; an unknown path a 404; a bug a 500 whose
body says only that the server log has the details.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from conveyor.errors import (
    AlreadyExists,
    Conflict,
    ConveyorError,
    InvalidInput,
    NotFound,
    SchemaOutdated,
    ServiceUnavailable,
    StorageError,
)

log = logging.getLogger("conveyor.server")

STATUS = {
    "INVALID": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "CONFLICT": 409,
    "ALREADY_EXISTS": 409,
    "TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "RANGE_NOT_SATISFIABLE": 416,
    "UNAVAILABLE": 503,
    "INTERNAL": 500,
}


class ApiV1Error(Exception):
    """An error answer of ``/api/v1``; ``code`` is a key of :data:`STATUS`."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = STATUS[code]

    def response(self) -> Response:
        return error_body(self.code, self.message, self.field, self.status)


def error_body(code: str, message: str, field: str | None, status: int) -> Response:
    body = {"error": {"code": code, "message": message, "field": field}}
    return Response(orjson.dumps(body), status, media_type="application/json")


def from_conveyor(error: ConveyorError) -> ApiV1Error:
    """The one place a domain error becomes an ``/api/v1`` code."""
    text = str(error)
    field = getattr(error, "field", None)
    if isinstance(error, NotFound):
        return ApiV1Error("NOT_FOUND", text, field=field)
    if isinstance(error, AlreadyExists):
        return ApiV1Error("ALREADY_EXISTS", text, field=field)
    if isinstance(error, InvalidInput):
        return ApiV1Error("INVALID", text, field=field)
    if isinstance(error, Conflict):
        return ApiV1Error("CONFLICT", text, field=field)
    if isinstance(error, (SchemaOutdated, StorageError, ServiceUnavailable)):
        return ApiV1Error("UNAVAILABLE", text, field=field)
    return ApiV1Error("INVALID", text, field=field)


def _field(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def install(api: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiV1Error)
        return exc.response()

    async def on_conveyor_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConveyorError)
        response = from_conveyor(exc).response()
        # the error's class, so a remote client raises the same one as embedded mode
        response.headers["X-Conveyor-Error"] = type(exc).__name__
        return response

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        field = _field(tuple(first.get("loc", ())))
        message = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
        return error_body("INVALID", message, field, 400)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
                409: "CONFLICT", 413: "TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
                416: "RANGE_NOT_SATISFIABLE"}.get(exc.status_code, "INVALID")
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no endpoint {request.method} {request.url.path}"
        return error_body(code, message, None, STATUS[code] if code != "INVALID" else 400)

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.getChild("error").exception("unhandled error on %s %s", request.method, request.url.path)
        return error_body("INTERNAL", "internal error; the server log has the details", None, 500)

    api.add_exception_handler(ApiV1Error, on_api_error)
    api.add_exception_handler(ConveyorError, on_conveyor_error)
    api.add_exception_handler(RequestValidationError, on_validation)
    api.add_exception_handler(HTTPException, on_http)
    api.add_exception_handler(Exception, on_crash)
