"""``/api/v1`` about the server itself: its version and the caller."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from conveyor._version import __version__
from conveyor.server.api import _deps

router = APIRouter(tags=["system"])


class ServerInfo(BaseModel):
    version: str
    user: str | None


@router.get("/info", response_model=ServerInfo, summary="The server's conveyor version and the caller's name")
def info(request: Request) -> Any:
    who = _deps.user(request)
    return ServerInfo(version=__version__, user=getattr(who, "name", None))
