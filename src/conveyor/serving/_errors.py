"""The one error shape of every serving route: ``{"error": message}`` plus a status.

Domain code raises :class:`HTTPError` (or conveyor's own errors, mapped here); the app
turns it into a JSON response. Client mistakes are 4xx, never 5xx.
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.errors import ConveyorError, InvalidInput, NotFound, ServiceUnavailable


class HTTPError(Exception):
    """An answer other than 200: status, message, optional extra headers and fields."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str) -> HTTPError:
    """400: the request is not well-formed (JSON syntax, protocol structure)."""
    return HTTPError(400, message)


def unprocessable(message: str) -> HTTPError:
    """422: well-formed, but does not match the model's signature (column, dtype, shape)."""
    return HTTPError(422, message)


def from_conveyor(error: ConveyorError) -> HTTPError:
    """Map a domain error to its status (the only place serving does so)."""
    if isinstance(error, NotFound):
        return HTTPError(404, str(error))
    if isinstance(error, InvalidInput):
        return HTTPError(422, str(error))
    if isinstance(error, ServiceUnavailable):
        return HTTPError(503, str(error), headers={"retry-after": "1"})
    return HTTPError(500, str(error))
