"""Models from the registry: ``models:/name@alias`` → a loaded ``conveyor.models`` package."""

from __future__ import annotations

from typing import Any

from conveyor.serving._deploy import ServedModel


class RegistrySource:
    """Resolve and load registered models (over ``tracker``'s stores, default: the project's).

    Example::

        >>> source = RegistrySource(tracker)                      # doctest: +SKIP
        >>> source.resolve("models:/iris@champion")               # doctest: +SKIP
        '3'
    """

    def __init__(self, tracker: Any = None) -> None:
        self._tracker = tracker
        self._registry: Any = None

    @property
    def registry(self) -> Any:
        if self._registry is None:
            from conveyor.registry import Registry

            tracker = self._tracker
            if tracker is None:
                from conveyor.tracking import get_tracker

                tracker = get_tracker()
            self._registry = Registry(tracker)
        return self._registry

    def resolve(self, uri: str) -> str:
        return str(self.registry.resolve(uri).version)

    def load(self, uri: str) -> ServedModel:
        ref = self.registry.resolve(uri)
        # Load the exact version resolved, so the name/version we report is what answers.
        predictor = self.registry.load_model(f"models:/{ref.name}/{ref.version}")
        return ServedModel(ref.name, predictor, str(ref.version), uri)
