"""What the registry, data, pipeline and monitoring routers share: page tokens, the lineage
graph's shape and the caller's name for the audit trail.

A page token is opaque to clients: base64 of ``{"offset": n}``, checked on the way back in,
so a token this server did not make is a 400 naming ``page_token``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, Field

from conveyor.server.api import _deps
from conveyor.server.api._errors import ApiV1Error

T = TypeVar("T")

#: The largest page any list endpoint answers.
MAX_PAGE = 1000


def make_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def offset_of(token: str | None) -> int:
    """The offset a page token carries (0 without one); a foreign token is a 400."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, TypeError, KeyError):
        offset = None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ApiV1Error(
            "INVALID", f"page_token {token!r} is not a token of this server: pass back next_page_token",
            field="page_token",
        )
    return offset


def page(items: Sequence[T], token: str | None, size: int) -> tuple[list[T], str | None]:
    """One page of ``items`` and the token of the next (None on the last page)."""
    offset = offset_of(token)
    chosen = list(items[offset : offset + size])
    return chosen, make_token(offset + size) if offset + size < len(items) else None


def caller(request: Request, claimed: str | None = None) -> str | None:
    """Who a change is recorded under: the authenticated user when the server authenticates
    (a claimed name is then ignored); otherwise the name the client sent (its login, as the
    embedded API records); None: the server process's user."""
    return getattr(_deps.user(request), "name", None) or claimed or None


class LineageEdge(BaseModel):
    upstream: str = Field(description="The upstream node, e.g. data:/train@1, runs:/<id>, models:/churn/2.")
    downstream: str
    relation: str = Field(description="input, output, produced, registered_as, code …")
    created_at: int | None = Field(None, description="When the edge was recorded (ms); null for implied edges.")
    run_id: str | None = None
    implied: bool = Field(False, description="Derived from other tables (run → artifact, commit → run).")


class Lineage(BaseModel):
    root: str
    upstream: list[LineageEdge]
    downstream: list[LineageEdge]


def lineage_of(tracker: Any, ref: str, direction: str, depth: int | None) -> Lineage:
    from conveyor.data import lineage_graph

    graph = lineage_graph(tracker, ref, direction=direction, depth=depth)  # type: ignore[arg-type]
    return Lineage.model_validate(graph.to_dict())


def allowed(request: Request, kind: _deps.Kind, resource: str | None, level: _deps.Level) -> bool:
    """Whether the caller may ``level`` the resource: lists leave out what it may not read."""
    return bool(request.app.state.policy.allows(_deps.user(request), kind, resource, level))
