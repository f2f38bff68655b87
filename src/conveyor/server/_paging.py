"""Page tokens: an opaque, checked offset (base64 of ``{"offset": n}``)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import TypeVar

from conveyor.server._errors import invalid

T = TypeVar("T")


def make_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def page_token(token: str | None) -> int:
    """The offset a token carries; a token this server did not make is a 400."""
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = data["offset"]
    except (ValueError, TypeError, KeyError):
        raise invalid(f"Invalid page_token {token!r}: pass back the next_page_token of a previous answer.") from None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise invalid(f"Invalid page_token {token!r}: pass back the next_page_token of a previous answer.")
    return offset


def page(items: Sequence[T], offset: int, size: int) -> tuple[list[T], str | None]:
    chosen = list(items[offset : offset + size])
    return chosen, make_token(offset + size) if offset + size < len(items) else None
