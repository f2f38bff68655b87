"""LightGBM flavor: the booster's own text model (``booster_.save_model``), never a pickle.

The text file holds the trees and parameters; ``lightgbm.Booster(model_file=…)`` parses it
and runs no code from it. What the scikit-learn wrapper adds on top of the booster is
stored as JSON in ``flavor_config``: ``kind`` (classifier, regressor, ranker or booster)
and, for classifiers, ``classes`` (the labels, so ``predict`` answers labels and
``predict_proba`` one column per class, as ``LGBMClassifier`` does). Inputs are numeric
columns, handed over in the training feature order.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from conveyor.errors import InvalidInput
from conveyor.models._flavor import Flavor

FILE = "model.txt"
KINDS = ("classifier", "regressor", "ranker", "booster")


class LightGBMFlavor(Flavor):
    name: ClassVar[str] = "lightgbm"
    requirements: ClassVar[tuple[str, ...]] = ("lightgbm", "scikit-learn")

    def can_handle(self, obj: Any) -> bool:
        if "lightgbm" not in sys.modules:
            return False
        import lightgbm

        return isinstance(obj, (lightgbm.LGBMModel, lightgbm.Booster))

    def save(self, obj: Any, folder: Path, **options: Any) -> dict[str, Any]:
        import lightgbm

        self.reject_options(options)
        if isinstance(obj, lightgbm.Booster):
            booster, kind, classes = obj, "booster", None
        else:
            booster = obj.booster_  # raises NotFittedError (sklearn's) for an unfitted model
            kind = ("classifier" if isinstance(obj, lightgbm.LGBMClassifier) else
                    "ranker" if isinstance(obj, lightgbm.LGBMRanker) else "regressor")
            classes = _json_labels(obj.classes_) if kind == "classifier" else None
        booster.save_model(str(folder / FILE))
        return {"file": FILE, "kind": kind, "classes": classes, "feature_names": list(booster.feature_name())}

    def load(self, folder: Path, config: Mapping[str, Any], **opts: Any) -> Any:
        import lightgbm
        import numpy as np

        kind = str(config.get("kind", ""))
        classes = config.get("classes")
        if kind not in KINDS or config.get("file") != FILE or (kind == "classifier" and not isinstance(classes, list)):
            raise InvalidInput(
                f"lightgbm flavor_config names kind {kind!r}, file {config.get('file')!r}, classes {classes!r}",
                field="flavor_config", value=dict(config),
                hint=f"kind is one of {', '.join(KINDS)}, file {FILE}; classifiers list their classes",
            )
        booster = lightgbm.Booster(model_file=str(folder / FILE))
        names = config.get("feature_names")
        return _LGBM(booster, kind, np.asarray(classes) if classes is not None else None,
                     list(names) if isinstance(names, list) else None)

    def native(self, model: Any) -> Any:
        return model.booster

    def predict(self, model: Any, batch: Any) -> Any:
        import numpy as np

        raw = np.asarray(model.booster.predict(_matrix(model.features, batch)))
        if model.kind != "classifier":
            return raw
        if raw.ndim == 1:  # binary: the probability of the second class
            return model.classes[(raw > 0.5).astype("int64")]
        return model.classes[np.argmax(raw, axis=1)]

    def has_proba(self, model: Any, config: Mapping[str, Any]) -> bool:
        return bool(model.kind == "classifier")

    def predict_proba(self, model: Any, batch: Any) -> Any:
        import numpy as np

        if model.kind != "classifier":
            return super().predict_proba(model, batch)
        raw = np.asarray(model.booster.predict(_matrix(model.features, batch)))
        return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw

    def native_proba(self, model: Any, example: Any) -> tuple[Any, Any] | None:
        from conveyor.models._sklearn import classifier_proba

        return classifier_proba(model, example)

    def native_predict(self, model: Any, example: Any) -> Any:
        import numpy as np

        return np.asarray(model.predict(example))


class _LGBM:
    __slots__ = ("booster", "kind", "classes", "features")

    def __init__(self, booster: Any, kind: str, classes: Any, features: list[str] | None) -> None:
        self.booster = booster
        self.kind = kind
        self.classes = classes
        self.features = features


def _json_labels(classes: Any) -> list[Any]:
    values = classes.tolist()
    for value in values:
        if not isinstance(value, (int, float, str, bool)):
            raise InvalidInput(
                f"class label {value!r} cannot be stored as JSON", field="classes_", value=repr(value),
                hint="train on int, float, bool or string labels",
            )
    return list(values)


def _matrix(features: list[str] | None, batch: Any) -> Any:
    """The batch as a float matrix in the training feature order."""
    matrix = batch.to_numpy("float64")
    if matrix.ndim != 2:
        raise InvalidInput(f"LightGBM models take a table, not a {matrix.ndim}-D tensor", field="inputs",
                           value=list(matrix.shape), hint="send one column per feature")
    if features and set(batch.names) == set(features) and list(batch.names) != features:
        order = [batch.names.index(f) for f in features]
        return matrix[:, order]
    return matrix
