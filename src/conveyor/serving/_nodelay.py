"""uvicorn's HTTP protocol with two additions: TCP_NODELAY on every connection, and a
deadline for a request's headers.

uvicorn with several workers hands the listening socket to child processes, where
asyncio no longer recognises it as TCP and skips TCP_NODELAY: each keep-alive answer then
waits for Nagle's algorithm and the client's delayed ACK (~40 ms). Setting the option in
``connection_made`` fixes it for one worker or many.

uvicorn times out idle keep-alive connections only after a first response; a client that
connects and sends nothing, or trickles one header line every few seconds, held its
connection forever (1,100 such connections were still open after 40 s). Here a timer
starts when a connection opens and when each request begins, and stops when its headers
are complete; when it fires the connection gets a 408 and is closed. The deadline is
``[serving] header_timeout_s`` (uvicorn's ``Config`` carries it as
``conveyor_header_timeout_s``; ``DEFAULT_HEADER_TIMEOUT_S`` otherwise).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base

    _HTTPTOOLS = True
except ImportError:  # pragma: no cover - httptools is a core dependency; h11 lacks the parser callbacks used here
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]

    _HTTPTOOLS = False

DEFAULT_HEADER_TIMEOUT_S = 10.0
_TIMEOUT_BODY = b'{"error": "the request headers took too long to arrive (header_timeout_s)"}'
_TIMEOUT_ANSWER = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
                   b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n" + _TIMEOUT_BODY)


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock: Any = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # the peer may already be gone
            pass


class NoDelayProtocol(_Base):
    """uvicorn's HTTP protocol plus TCP_NODELAY and a header deadline."""

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override,unused-ignore]
        set_nodelay(transport)
        super().connection_made(transport)
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        if not _HTTPTOOLS or self._header_timer is not None:
            return
        seconds = getattr(self.config, "conveyor_header_timeout_s", None) or DEFAULT_HEADER_TIMEOUT_S
        self._header_timer = self.loop.call_later(seconds, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMEOUT_ANSWER)
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)
