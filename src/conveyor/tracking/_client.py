"""The remote mode's HTTP client: one keep-alive connection to ``<url>/api/v1``, bounded
retries and the server's error shape mapped back to the embedded mode's errors.

Every request is retried with exponential backoff (0.1 s doubling to at most 5 s) on
connection errors and 5xx answers for up to ``[server] retry_seconds``; 4xx answers raise
the matching ``ConveyorError`` at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from conveyor import errors as _errors
from conveyor.errors import ConveyorError, InvalidInput, NotFound, StorageError
from conveyor.settings import ServerSettings

#: Backoff between retries: the first wait, the growth factor and the longest wait (seconds).
BACKOFF_FIRST, BACKOFF_FACTOR, BACKOFF_MAX = 0.1, 2.0, 5.0


class ServerUnreachable(StorageError):
    """The conveyor server did not answer (connection refused or reset, timeout, 5xx) within
    ``[server] retry_seconds``."""


class AccessDenied(ConveyorError, PermissionError):
    """The server refused the request: no token, a wrong or revoked token, or no permission."""


def _error(response: httpx.Response) -> ConveyorError:
    """The server's one error shape as the same ConveyorError subclass as embedded mode."""
    try:
        body = response.json()["error"]
        code, message, field = str(body.get("code")), str(body.get("message")), body.get("field")
    except (ValueError, KeyError, TypeError, AttributeError):
        code, message, field = "", response.text[:500] or response.reason_phrase, None
    status = response.status_code
    named = getattr(_errors, response.headers.get("x-conveyor-error", ""), None)
    if status in (401, 403):
        return AccessDenied(f"the conveyor server refused: {message}",
                            hint="check [server] token (CONVEYOR_SERVER_TOKEN) and your permissions")
    if status == 404:
        error: ConveyorError = NotFound.__new__(NotFound)
        ConveyorError.__init__(error, message)
        error.kind, error.name = "resource", field  # type: ignore[attr-defined]
        return error
    if status == 409:
        cls = _errors.AlreadyExists if code == "ALREADY_EXISTS" else _errors.Conflict
        error = cls.__new__(cls)
        ConveyorError.__init__(error, message)
        return error
    if status >= 500:
        return ServerUnreachable(f"the conveyor server failed: {message}",
                                 hint="the server's log has the details")
    cls = named if isinstance(named, type) and issubclass(named, InvalidInput) else InvalidInput
    error = cls.__new__(cls)
    InvalidInput.__init__(error, message, field=field)  # type: ignore[arg-type]
    return error


class Http:
    """One keep-alive ``httpx.Client`` to ``<url>/api/v1`` with bounded retries."""

    def __init__(self, settings: ServerSettings) -> None:
        if settings.url is None:
            raise InvalidInput("no server URL", field="server.url", hint="set CONVEYOR_SERVER_URL")
        self.url = settings.url
        self.retry_seconds = settings.retry_seconds
        headers = {"User-Agent": "conveyor-remote"}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        self.client = httpx.Client(
            base_url=self.url + "/api/v1",
            headers=headers,
            timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 5.0)),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
            follow_redirects=False,
            # plain http needs no TLS context (loading the CA bundle costs ~0.5 s per process)
            verify=self.url.startswith("https://"),
        )

    def close(self) -> None:
        self.client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        retry: bool = True,
        content: Callable[[], Any] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """The answer to one request; 4xx raise the matching ConveyorError at once, connection
        errors and 5xx are retried (when ``retry``) until ``retry_seconds`` have passed.
        ``content`` makes a fresh body per attempt (an open file for a streamed upload)."""
        deadline = time.monotonic() + (self.retry_seconds if retry else 0.0)
        wait = BACKOFF_FIRST
        while True:
            body = content() if content is not None else None
            try:
                if body is not None:
                    kwargs["content"] = body
                response = self.client.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                failure: ConveyorError = ServerUnreachable(
                    f"conveyor server {self.url} is unreachable: {type(exc).__name__}: {exc}",
                    hint=f"check that `conveyor server` runs there; retried for {self.retry_seconds:g} s "
                    "([server] retry_seconds, CONVEYOR_SERVER_RETRY_SECONDS)",
                )
                failure.__cause__ = exc
            else:
                if response.status_code < 400:
                    return response
                failure = _error(response)
                if response.status_code < 500:
                    raise failure
            finally:
                if body is not None and hasattr(body, "close"):
                    body.close()
            left = deadline - time.monotonic()
            if left <= 0:
                raise failure
            time.sleep(min(wait, left))
            wait = min(wait * BACKOFF_FACTOR, BACKOFF_MAX)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def error(self, response: httpx.Response) -> ConveyorError:
        """The ConveyorError a (read) 4xx/5xx answer stands for (streamed requests)."""
        return _error(response)
