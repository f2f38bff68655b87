"""Every page group of the UI, listed in one place.

A group is a module of this package with ``routes`` (a list of Starlette routes) and,
optionally, ``NAV``: ``(label, path)`` for the header navigation. To add pages, write the
module and add it to :data:`GROUPS`.
"""

from __future__ import annotations

import importlib
from typing import Any

from starlette.routing import BaseRoute

#: The page groups, in the order of the header navigation.
GROUPS = [
    "conveyor.ui.pages.experiments",
    "conveyor.ui.pages.runs",
    "conveyor.ui.pages.run",
    "conveyor.ui.pages.compare",
    "conveyor.ui.pages.datasets",
    "conveyor.ui.pages.pipelines",
    "conveyor.ui.pages.models",
    "conveyor.ui.pages.monitoring",
    "conveyor.ui.pages.login",
]


def _modules() -> list[Any]:
    return [importlib.import_module(name) for name in GROUPS]


def routes() -> list[BaseRoute]:
    out: list[BaseRoute] = []
    for module in _modules():
        out += module.routes
    return out


def navigation() -> list[tuple[str, str]]:
    return [module.NAV for module in _modules() if getattr(module, "NAV", None)]
