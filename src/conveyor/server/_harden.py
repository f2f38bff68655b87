"""What every request meets before authentication, and every answer carries.

- **Host allow-list** (DNS rebinding): a browser page on ``evil.example`` whose name is made
  to resolve to 127.0.0.1 sends ``Host: evil.example``; only 127.0.0.1, localhost, ::1 and
  ``[server] allowed_hosts`` are answered (``/health`` excepted: probes use the pod's IP).
- **Cross-origin requests** are refused (403) unless their ``Origin`` is the server's own or
  listed in ``[server] cors_origins``: with CORS off, a page elsewhere can neither read an
  answer nor make the loopback server write (a cross-origin ``POST`` needs no preflight).
  Listed origins get CORS answers from Starlette's ``CORSMiddleware``.
- **Body limits** on every route: ``[server] max_upload_bytes`` for artifact and data set
  object uploads,
  ``[server] max_json_bytes`` for everything else; a larger body (declared or streamed) is
  a 413 and the handler never sees it.
- **Security headers** on every answer: ``nosniff``, ``DENY`` framing, ``same-origin`` referrer policy and a
  Content-Security-Policy that lets a same-origin UI load its own scripts and styles only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.server._errors import ApiError
from conveyor.server._http import error_response

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
OPEN_PATHS = {"/health"}
UPLOAD_PATH = re.compile(r"^/(ajax-)?api/2\.0/mlflow-artifacts/|^/api/v1/.*artifacts|^/api/v1/datasets/[^/]+/blobs/[^/]+$"
                         r"|^/api/v1/runs/[^/]+/uploads/")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on a form
    # POST, and the same-origin checks of the login form and of this middleware refuse it
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", CSP.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def _refusal(path: str, status: int, message: str) -> Any:
    if path.startswith("/api/v1"):
        from conveyor.server.api._errors import error_body

        code = {400: "INVALID", 403: "FORBIDDEN", 413: "TOO_LARGE"}[status]
        return error_body(code, message, None, status)
    code = {400: "BAD_REQUEST", 403: "PERMISSION_DENIED", 413: "REQUEST_LIMIT_EXCEEDED"}[status]
    return error_response(ApiError(code, message))


def split_host(value: str) -> tuple[str, str | None]:
    """``host[:port]`` or ``[v6]:port`` → (lower-case host, port or None)."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    if value.count(":") > 1:  # a bare IPv6 address
        return value, None
    host, sep, port = value.partition(":")
    return host, port if sep else None


class Harden:
    """ASGI middleware: host allow-list, cross-origin refusal, body limits, security headers."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str] = (), cors_origins: Iterable[str] = (),
                 max_json_bytes: int = 16 * 1024 * 1024, max_upload_bytes: int = 5 * 1024**3) -> None:
        self.app = app
        extra = [h.strip().lower() for h in allowed_hosts if h.strip()]
        self.any_host = "*" in extra
        self.hosts = set(LOOPBACK_HOSTS) | {h for h in extra if h != "*"}
        self.origins = {o.strip().rstrip("/").lower() for o in cors_origins if o.strip()}
        self.max_json = max_json_bytes
        self.max_upload = max_upload_bytes

    def _host_ok(self, host: str) -> bool:
        if self.any_host:
            return True
        name, port = split_host(host)
        return name in self.hosts or (port is not None and f"{name}:{port}" in self.hosts)

    def _origin_ok(self, origin: str, host: str) -> bool:
        origin = origin.strip().rstrip("/").lower()
        if origin in self.origins:
            return True
        scheme, sep, netloc = origin.partition("://")
        return bool(sep) and scheme in ("http", "https") and netloc == host.strip().lower()  # same origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((k, v) for k, v in SECURITY_HEADERS if k not in present)]
            await send(message)

        path: str = scope["path"]
        headers = {k: v.decode("latin-1") for k, v in scope["headers"] if k in (b"host", b"origin", b"content-length")}
        host = headers.get(b"host", "")
        if path not in OPEN_PATHS and not self._host_ok(host):
            await _refusal(path, 400, f"Host header {host!r} is not allowed: reach the server by 127.0.0.1 or "
                           "localhost, or add the name to [server] allowed_hosts (DNS rebinding protection)"
                           )(scope, receive, send_with_headers)
            return
        origin = headers.get(b"origin")
        if origin is not None and not self._origin_ok(origin, host):
            await _refusal(path, 403, f"cross-origin request from {origin!r} refused: CORS is off; add the "
                           "origin to [server] cors_origins to allow it")(scope, receive, send_with_headers)
            return
        limit = self.max_upload if UPLOAD_PATH.match(path) else self.max_json
        what = "[server] max_upload_bytes" if limit == self.max_upload else "[server] max_json_bytes"
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
            await _refusal(path, 413, f"request body over {limit} bytes ({what})")(scope, receive, send_with_headers)
            return

        seen = 0
        over = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    return {"type": "http.disconnect"}  # the handler stops reading; we answer 413
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return
            if message["type"] == "http.response.start":
                started = True
            await send_with_headers(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await _refusal(path, 413, f"request body over {limit} bytes ({what})")(scope, receive, send_with_headers)
