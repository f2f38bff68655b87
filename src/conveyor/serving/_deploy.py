"""What is being served: model versions (each with its batcher), and per model name the
champion plus an optional canary (a share of traffic) and an optional shadow (a copy)."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from conveyor.entities import Predictor, Signature
from conveyor.serving._batcher import Batcher
from conveyor.serving._codec import Columns, named_outputs, to_model_input
from conveyor.serving._config import ServingConfig
from conveyor.serving._errors import HTTPError
from conveyor.serving._metrics import Metrics


@dataclass(frozen=True)
class ServedModel:
    """A loaded model under a name and version (``uri`` is the registry reference it came
    from, followed with ``--follow``).

    Example::

        >>> ServedModel("iris", my_predictor, version="3")  # doctest: +SKIP
    """

    name: str
    predictor: Predictor
    version: str = "1"
    uri: str | None = None


class ModelSource(Protocol):
    """Where models come from: the registry, or anything that maps URIs to models."""

    def resolve(self, uri: str) -> str:
        """The version ``uri`` points to now (cheap: called every few seconds by --follow)."""
        ...

    def load(self, uri: str) -> ServedModel:
        """Load the version ``uri`` points to now."""
        ...


class Deployment:
    """One model version being served: its predictor and its batcher."""

    def __init__(self, served: ServedModel, config: ServingConfig, metrics: Metrics) -> None:
        self.served = served
        self.name = served.name
        self.version = served.version
        self.predictor = served.predictor
        self.signature: Signature | None = getattr(served.predictor, "signature", None)
        self.flavor = str(getattr(served.predictor, "flavor", "python"))
        self.batcher = Batcher(
            self._predict,
            name=f"{self.name}/{self.version}",
            max_batch_size=config.max_batch_size,
            max_wait_ms=config.max_wait_ms,
            queue_size=config.queue_size,
            batching=config.batching,
            inline_below_ms=config.inline_predict_ms,
            on_batch=lambda rows: metrics.batch(self.name, self.version, rows),
        )

    def _predict(self, cols: Columns, rows: int) -> Columns:  # in the model's thread, or inline if fast
        result = self.predictor.predict(to_model_input(cols, self.signature))
        return named_outputs(result, self.signature, rows)

    async def infer(self, cols: Columns, rows: int) -> Columns:
        return await self.batcher.submit(cols, rows)


@dataclass
class Route:
    """The versions answering for one model name."""

    name: str
    champion: Deployment
    canary: Deployment | None = None
    canary_percent: float = 0.0
    shadow: Deployment | None = None
    uris: dict[str, str] = field(default_factory=dict)  # role → registry URI (for --follow)

    def pick(self, sticky: str | None = None) -> Deployment:
        """Champion or canary; the same ``sticky`` value always gets the same answer."""
        if self.canary is None or self.canary_percent <= 0:
            return self.champion
        bucket = (zlib.crc32(sticky.encode()) % 10_000) / 100 if sticky else random.random() * 100
        return self.canary if bucket < self.canary_percent else self.champion

    def deployments(self) -> list[Deployment]:
        return [d for d in (self.champion, self.canary, self.shadow) if d is not None]


class Fleet:
    """Every route and every loaded version, looked up by name (and version)."""

    def __init__(self, metrics: Metrics, config: ServingConfig) -> None:
        self.metrics = metrics
        self.config = config
        self.routes: dict[str, Route] = {}
        self.order: list[str] = []

    def add(self, served: ServedModel, role: str = "champion", percent: float = 0.0) -> Deployment:
        dep = Deployment(served, self.config, self.metrics)
        route = self.routes.get(served.name)
        if route is None:
            if role != "champion":
                raise HTTPError(500, f"{role} for {served.name!r} given before its champion")
            route = self.routes[served.name] = Route(served.name, dep)
            self.order.append(served.name)
        elif role == "canary":
            route.canary, route.canary_percent = dep, percent
        elif role == "shadow":
            route.shadow = dep
        else:
            route.champion = dep
        if served.uri:
            route.uris[role] = served.uri
        return dep

    def route(self, name: str) -> Route:
        route = self.routes.get(name)
        if route is None:
            raise HTTPError(404, f"model {name!r} is not served here; served: {self.order}")
        return route

    def version(self, name: str, version: str) -> Deployment:
        for dep in self.route(name).deployments():
            if dep.version == version:
                return dep
        served = [d.version for d in self.route(name).deployments()]
        raise HTTPError(404, f"model {name!r} has no version {version!r} loaded; loaded: {served}")

    def all(self) -> list[Deployment]:
        return [d for n in self.order for d in self.routes[n].deployments()]

    def depth(self) -> list[tuple[tuple[str, str], float]]:
        return [((d.name, d.version), float(d.batcher.depth)) for d in self.all()]
