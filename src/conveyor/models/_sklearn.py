"""scikit-learn flavor: skops files, loaded with only trusted types unless told otherwise.

skops rebuilds objects from a JSON schema instead of unpickling, and refuses types it does
not trust (scikit-learn, numpy, scipy built-ins are trusted). A package holding anything
else (a custom transformer, say) loads only when the caller names those types in
``trusted=[...]`` — the fix for MLflow CVE-2024-37052-style pickles that run code on load.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from conveyor.errors import InvalidInput
from conveyor.models._flavor import Flavor

FILE = "model.skops"


class UntrustedTypes(InvalidInput):
    """A skops file holds types the caller did not trust."""


class SklearnFlavor(Flavor):
    name: ClassVar[str] = "sklearn"
    requirements: ClassVar[tuple[str, ...]] = ("scikit-learn", "skops", "scipy")

    def can_handle(self, obj: Any) -> bool:
        if "sklearn" not in sys.modules:
            return False
        from sklearn.base import BaseEstimator

        return isinstance(obj, BaseEstimator) and hasattr(obj, "predict")

    def save(self, obj: Any, folder: Path, **options: Any) -> dict[str, Any]:
        import skops.io as sio

        self.reject_options(options)
        sio.dump(obj, folder / FILE)
        names = getattr(obj, "feature_names_in_", None)
        return {
            "file": FILE,
            "estimator": f"{type(obj).__module__}.{type(obj).__qualname__}",
            "predict_proba": hasattr(obj, "predict_proba"),
            # a model fitted on a DataFrame wants one back (column names, mixed dtypes)
            "wants_frame": names is not None,
        }

    def load(self, folder: Path, config: Mapping[str, Any], **opts: Any) -> Any:
        import skops.io as sio

        path = folder / str(config.get("file", FILE))
        trusted = list(opts.get("trusted") or [])
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in trusted]
        if untrusted:
            listed = ", ".join(untrusted)
            raise UntrustedTypes(
                f"the scikit-learn package holds types that are not trusted: {listed}",
                field="trusted",
                value=untrusted,
                hint=f"if you trust where this model comes from, load it with trusted={untrusted!r}",
            )
        return sio.load(path, trusted=trusted or None)

    def _input(self, model: Any, batch: Any) -> Any:
        # fitted on a DataFrame: sklearn checks the column names (and warns without them)
        if batch.matrix is None or getattr(model, "feature_names_in_", None) is not None:
            return batch.to_frame()
        return batch.to_numpy()

    def predict(self, model: Any, batch: Any) -> Any:
        return model.predict(self._input(model, batch))

    def has_proba(self, model: Any, config: Mapping[str, Any]) -> bool:
        return hasattr(model, "predict_proba")

    def predict_proba(self, model: Any, batch: Any) -> Any:
        if not hasattr(model, "predict_proba"):
            return super().predict_proba(model, batch)
        return model.predict_proba(self._input(model, batch))

    def native_predict(self, model: Any, example: Any) -> Any:
        return model.predict(example)

