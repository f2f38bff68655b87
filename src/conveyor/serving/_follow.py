"""``--follow``: poll the registry and swap in a new version when an alias moves.

The swap is one attribute assignment on the event loop: a request picks its version and
enqueues in the same loop step, so every request lands either on the old batcher (which
drains before it closes) or on the new one — none fails during the swap. A new version
that fails to load leaves the old one serving.
"""

from __future__ import annotations

import asyncio
import logging

from conveyor.serving._deploy import Deployment, Fleet, ModelSource, Route, ServedModel

log = logging.getLogger("conveyor.serving")


def _current(route: Route, role: str) -> Deployment | None:
    return {"champion": route.champion, "canary": route.canary, "shadow": route.shadow}.get(role)


def _assign(route: Route, role: str, dep: Deployment) -> None:
    if role == "canary":
        route.canary = dep
    elif role == "shadow":
        route.shadow = dep
    else:
        route.champion = dep


async def check_once(fleet: Fleet, source: ModelSource, closing: set[asyncio.Task[None]]) -> int:
    """Compare every followed URI with the registry; returns how many versions were swapped."""
    swapped = 0
    for route in list(fleet.routes.values()):
        for role, uri in list(route.uris.items()):
            old = _current(route, role)
            try:
                version = await asyncio.to_thread(source.resolve, uri)
                if old is not None and version == old.version:
                    continue
                served = await asyncio.to_thread(source.load, uri)
            except Exception as exc:  # keep serving what we have
                log.warning("follow: cannot reload %s (%s): %s; still serving version %s",
                            uri, role, exc, old.version if old else "?")
                continue
            new = Deployment(ServedModel(route.name, served.predictor, served.version, uri), fleet.config, fleet.metrics)
            _assign(route, role, new)
            swapped += 1
            log.info("follow: %s now serves %s version %s (was %s)", uri, route.name, new.version,
                     old.version if old else None)
            if old is not None and old not in route.deployments():
                task = asyncio.get_running_loop().create_task(old.close())
                closing.add(task)
                task.add_done_callback(closing.discard)
    return swapped


async def follow_forever(fleet: Fleet, source: ModelSource, interval: float, closing: set[asyncio.Task[None]]) -> None:
    while True:
        await asyncio.sleep(interval)
        await check_once(fleet, source, closing)
