"""HTTP plumbing shared by the routes: request ids, bodies with limits, JSON, access log."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.serving._errors import HTTPError, bad_request

access_log = logging.getLogger("conveyor.serving.access")
_RID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def valid_request_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_RID.match(value))


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def error_response(error: HTTPError, request_id: str | None) -> Response:
    payload: dict[str, Any] = {"error": error.message}
    if request_id:
        payload["request_id"] = request_id
    return json_response(payload, error.status, error.headers)


def media_type(request: Request) -> tuple[str, str | None]:
    """(type, charset) of the request body; a missing header means JSON."""
    raw = request.headers.get("content-type", "application/json")
    parts = [p.strip() for p in raw.split(";")]
    charset = None
    for p in parts[1:]:
        if p.lower().startswith("charset="):
            charset = p.split("=", 1)[1].strip().strip('"').lower()
    return parts[0].lower(), charset


def require_json(request: Request, *, allow: tuple[str, ...] = ()) -> str:
    """415 unless the body is JSON in UTF-8 (or one of ``allow``)."""
    kind, charset = media_type(request)
    if kind not in ("application/json", *allow):
        raise HTTPError(415, f"unsupported media type {kind!r}; send application/json"
                        + (" or " + " or ".join(allow) if allow else ""))
    if charset not in (None, "utf-8", "utf8"):
        raise HTTPError(415, f"unsupported charset {charset!r}; send UTF-8")
    return kind


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The whole body, or 413 past ``limit`` bytes, or 408 when the client is too slow."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise HTTPError(413, f"request body of {declared} bytes is over the limit of {limit} bytes "
                                "(max_body_bytes)")
        except ValueError:
            raise bad_request(f"bad Content-Length {declared!r}") from None
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPError(413, f"request body is over the limit of {limit} bytes (max_body_bytes)")
                chunks.append(chunk)
    except TimeoutError:
        raise HTTPError(408, f"the request body took longer than {timeout:g} s to arrive (body_timeout_s)") from None
    return b"".join(chunks)


def parse_json(data: bytes) -> Any:
    """JSON, 400 naming the problem when it is malformed. ``NaN``/``Infinity`` literals (which
    Python's json module writes) are accepted here, and then checked against the signature
    (NaN only where it allows missing values; infinities never reach a model)."""
    if not data:
        raise bad_request("the request body is empty; send a JSON document")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if b"NaN" in data or b"Infinity" in data:
            try:
                return json.loads(data)
            except ValueError:
                pass
            except RecursionError:  # Python's parser has no depth limit of its own (orjson's is 1024)
                raise bad_request("malformed JSON: nested deeper than 1,000 levels") from None
        raise bad_request(f"malformed JSON: {exc}") from None


class AccessLog:
    """ASGI middleware: request id in and out (``x-request-id``), one JSON log line per request."""

    def __init__(self, app: ASGIApp, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        rid = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                text = value.decode("latin-1")
                rid = text if valid_request_id(text) else None
                break
        state["request_id"] = rid or new_request_id()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", state["request_id"].encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if self.enabled and access_log.isEnabledFor(logging.INFO):
                line = {
                    "ts": time.time(), "request_id": state["request_id"], "method": scope["method"],
                    "path": scope["path"], "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 3),
                    "model": state.get("model"), "version": state.get("version"),
                    "client": scope["client"][0] if scope.get("client") else None,
                }
                access_log.info(orjson.dumps(line).decode())
