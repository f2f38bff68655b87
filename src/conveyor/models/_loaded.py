"""``LoadedModel``: one ``predict`` over every flavor, with the signature enforced."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.entities import Signature
from conveyor.models._flavor import Flavor
from conveyor.models._meta import ModelMeta
from conveyor.models._validate import Batch, Validator


class LoadedModel:
    """A model package in memory. Satisfies ``conveyor.entities.Predictor``.

    Example::

        >>> model = conveyor.models.load("runs:/abc123/model")  # doctest: +SKIP
        >>> model.predict([{"x": 1.0}])                          # doctest: +SKIP
        array([0])
    """

    __slots__ = ("_flavor", "_model", "_validator", "meta", "source", "example")

    def __init__(self, flavor: Flavor, native: Any, meta: ModelMeta, *, source: str, example: Any = None) -> None:
        self._flavor = flavor
        self._model = native  # what the flavor loaded (the model, maybe with its helpers)
        self.meta = meta
        self.source = source
        self.example = example
        self._validator = Validator(meta.signature)

    def __repr__(self) -> str:
        return f"LoadedModel(flavor={self.flavor!r}, source={self.source!r})"

    @property
    def native(self) -> Any:
        """The framework's own model object (scikit-learn estimator, keras.Model, …)."""
        return self._flavor.native(self._model)

    @property
    def flavor(self) -> str:
        return self.meta.flavor

    @property
    def signature(self) -> Signature | None:
        return self.meta.signature

    @property
    def requirements(self) -> tuple[str, ...]:
        return self.meta.requirements

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The whole package description (``conveyor-model.json``) as a dict."""
        return self.meta.to_dict()

    @property
    def has_proba(self) -> bool:
        return self._flavor.has_proba(self._model, self.meta.flavor_config)

    def validate(self, data: Any) -> Batch:
        """Check ``data`` against the signature; raises ``InvalidInput`` naming bad columns."""
        return self._validator(data)

    def predict(self, data: Any) -> Any:
        """Predictions for a DataFrame, ndarray (signature column order) or list of dicts."""
        return self._flavor.predict(self._model, self._validator(data))

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities (rows × classes) for classifiers that have them."""
        return self._flavor.predict_proba(self._model, self._validator(data))
