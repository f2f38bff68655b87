"""uvicorn HTTP protocols that set TCP_NODELAY on every connection.

uvicorn with several workers hands the listening socket to child processes, where
asyncio no longer recognises it as TCP and skips TCP_NODELAY: each keep-alive answer then
waits for Nagle's algorithm and the client's delayed ACK (~40 ms). Setting the option in
``connection_made`` fixes it for one worker or many.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - httptools is optional in uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock: Any = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # the peer may already be gone
            pass


class NoDelayProtocol(_Base):
    """uvicorn's HTTP protocol plus TCP_NODELAY."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override,unused-ignore]
        set_nodelay(transport)
        super().connection_made(transport)
