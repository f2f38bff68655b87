"""What is being served: model versions (each with its batcher), and per model name the
champion plus an optional canary (a share of traffic) and an optional shadow (a copy)."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from conveyor.entities import ColumnSpec, Predictor, Signature
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


#: the output that carries class probabilities (``predict_proba``), asked for per request
PROBABILITIES = "probabilities"


class Deployment:
    """One model version being served: its predictor and its batchers (one for labels, one
    for labels and class probabilities, made when first asked for)."""

    def __init__(self, served: ServedModel, config: ServingConfig, metrics: Metrics) -> None:
        self.served = served
        self.name = served.name
        self.version = served.version
        self.predictor = served.predictor
        self.model_signature: Signature | None = getattr(served.predictor, "signature", None)
        self.flavor = str(getattr(served.predictor, "flavor", "python"))
        self._proba = _proba_method(served.predictor)
        #: what this version answers: the model's outputs, plus ``probabilities`` when it has them
        self.signature = _served_signature(self.model_signature, served.predictor, self._proba is not None)
        self._config, self._metrics = config, metrics
        self.batcher = self._batcher(self._predict, "")
        self._proba_batcher: Batcher | None = None

    def _batcher(self, predict: Any, suffix: str) -> Batcher:
        config = self._config
        return Batcher(
            predict,
            name=f"{self.name}/{self.version}{suffix}",
            max_batch_size=config.max_batch_size,
            max_wait_ms=config.max_wait_ms,
            queue_size=config.queue_size,
            batching=config.batching,
            inline_below_ms=config.inline_predict_ms,
            on_batch=lambda rows: self._metrics.batch(self.name, self.version, rows),
        )

    @property
    def outputs(self) -> list[str]:
        return [c.name for c in self.signature.outputs] if self.signature else []

    @property
    def has_probabilities(self) -> bool:
        return self._proba is not None

    def _predict(self, cols: Columns, rows: int) -> Columns:  # in the model's thread, or inline if fast
        result = self.predictor.predict(to_model_input(cols, self.model_signature))
        return named_outputs(result, self.model_signature, rows)

    def _predict_proba(self, cols: Columns, rows: int) -> Columns:
        assert self._proba is not None
        data = to_model_input(cols, self.model_signature)
        outputs = dict(named_outputs(self.predictor.predict(data), self.model_signature, rows))
        proba = np.asarray(self._proba(data), dtype=np.float64)
        if proba.ndim != 2 or len(proba) != rows:
            raise HTTPError(500, f"predict_proba returned shape {list(proba.shape)} for {rows} rows; "
                            "expected [rows, classes]")
        outputs[PROBABILITIES] = proba
        return outputs

    async def infer(self, cols: Columns, rows: int, probabilities: bool = False) -> Columns:
        if not probabilities:
            return await self.batcher.submit(cols, rows)
        if self._proba is None:
            raise HTTPError(422, f"model {self.name!r} version {self.version} has no {PROBABILITIES!r} output "
                            f"(it has no predict_proba); it answers {self.outputs}")
        if self._proba_batcher is None:
            self._proba_batcher = self._batcher(self._predict_proba, "+proba")
        return await self._proba_batcher.submit(cols, rows)

    def batchers(self) -> list[Batcher]:
        return [b for b in (self.batcher, self._proba_batcher) if b is not None]

    @property
    def depth(self) -> int:
        return sum(b.depth for b in self.batchers())

    async def close(self) -> None:
        for batcher in self.batchers():
            await batcher.close()


def _proba_method(predictor: Any) -> Any:
    method = getattr(predictor, "predict_proba", None)
    if not callable(method):
        return None
    try:
        has = getattr(predictor, "has_proba", True)  # LoadedModel: whether its flavor really has one
    except Exception:  # a property that fails means no
        return None
    return method if has else None


def _served_signature(signature: Signature | None, predictor: Any, proba: bool) -> Signature | None:
    """The model's outputs plus ``probabilities``: as the package's signature records it (dtype,
    width, class labels), or, for a package saved before signatures recorded it, its width read
    from the native model's ``classes_``."""
    if not proba or signature is None or any(c.name == PROBABILITIES for c in signature.outputs):
        return signature
    outputs = signature.outputs or (ColumnSpec("prediction", "float64"),)
    if signature.probabilities is not None:
        return Signature(signature.inputs, (*outputs, signature.probabilities), signature.probabilities)
    native = getattr(predictor, "native", predictor)
    classes = getattr(native, "classes_", None)
    width = len(classes) if classes is not None and np.ndim(classes) == 1 else -1
    return Signature(signature.inputs, (*outputs, ColumnSpec(PROBABILITIES, "float64", (width,))))


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
        return [((d.name, d.version), float(d.depth)) for d in self.all()]
