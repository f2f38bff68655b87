"""XGBoost flavor: the model in XGBoost's own format (UBJSON by default, or JSON), never a pickle.

``save_model`` of the scikit-learn wrappers (``XGBClassifier``, ``XGBRegressor``,
``XGBRanker``, ``XGBRF*``) and of a plain ``Booster`` writes trees, parameters and the
wrapper's attributes; loading creates the wrapper class named in ``flavor_config.kind``
(one of ``KINDS``, never an arbitrary reference) and calls ``load_model``, which parses
data and runs no code from the file. Inputs are numeric columns; they are handed to the
model as a DataFrame with the training feature names, so a signature whose columns come in
another order still feeds each feature to its own trees.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from conveyor.errors import InvalidInput
from conveyor.models._flavor import Flavor

#: the classes a package may name; anything else is refused on load
KINDS = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor", "Booster")
FORMATS = {"ubj": "model.ubj", "json": "model.json"}


class XGBoostFlavor(Flavor):
    name: ClassVar[str] = "xgboost"
    requirements: ClassVar[tuple[str, ...]] = ("xgboost", "xgboost-cpu", "scikit-learn")

    def can_handle(self, obj: Any) -> bool:
        if "xgboost" not in sys.modules:
            return False
        import xgboost

        return isinstance(obj, (xgboost.XGBModel, xgboost.Booster))

    def save(self, obj: Any, folder: Path, **options: Any) -> dict[str, Any]:
        options.pop("example", None)
        fmt = str(options.pop("format", "ubj"))
        self.reject_options(options, ("format",))
        if fmt not in FORMATS:
            raise InvalidInput(f"XGBoost format {fmt!r} is not known", field="format", value=fmt,
                               hint="use format='ubj' (default) or 'json'")
        kind = type(obj).__name__
        if kind not in KINDS:
            raise InvalidInput(
                f"{type(obj).__qualname__} is not one of XGBoost's own model classes", field="model", value=kind,
                hint=f"save one of {', '.join(KINDS)} (a subclass would need its own code to load)",
            )
        obj.save_model(str(folder / FORMATS[fmt]))
        return {"file": FORMATS[fmt], "format": fmt, "kind": kind, "feature_names": _feature_names(obj)}

    def load(self, folder: Path, config: Mapping[str, Any], **opts: Any) -> Any:
        import xgboost

        kind = str(config.get("kind", ""))
        fmt = str(config.get("format", "ubj"))
        if kind not in KINDS or fmt not in FORMATS or config.get("file") != FORMATS[fmt]:
            raise InvalidInput(
                f"xgboost flavor_config names kind {kind!r}, format {fmt!r}, file {config.get('file')!r}",
                field="flavor_config", value=dict(config), hint=f"kind is one of {', '.join(KINDS)}; "
                "format ubj (model.ubj) or json (model.json)",
            )
        path = str(folder / FORMATS[fmt])
        if kind == "Booster":
            model = xgboost.Booster(model_file=path)
        else:
            model = getattr(xgboost, kind)()
            model.load_model(path)
        names = config.get("feature_names")
        return _XGB(model, list(names) if isinstance(names, list) else None)

    def native(self, model: Any) -> Any:
        return model.model

    def predict(self, model: Any, batch: Any) -> Any:
        import numpy as np

        frame = _frame(model.features, batch)
        if isinstance(model.model, _booster_class()):
            return np.asarray(model.model.inplace_predict(frame))
        return np.asarray(model.model.predict(frame))

    def has_proba(self, model: Any, config: Mapping[str, Any]) -> bool:
        return hasattr(model.model, "predict_proba")

    def predict_proba(self, model: Any, batch: Any) -> Any:
        if not hasattr(model.model, "predict_proba"):
            return super().predict_proba(model, batch)
        return model.model.predict_proba(_frame(model.features, batch))

    def native_proba(self, model: Any, example: Any) -> tuple[Any, Any] | None:
        from conveyor.models._sklearn import classifier_proba

        return classifier_proba(model, example)

    def native_predict(self, model: Any, example: Any) -> Any:
        import numpy as np
        import pandas as pd

        data = example if isinstance(example, pd.DataFrame) else np.asarray(example)
        if isinstance(model, _booster_class()):
            return np.asarray(model.inplace_predict(data))
        return np.asarray(model.predict(data))


class _XGB:
    __slots__ = ("model", "features")

    def __init__(self, model: Any, features: list[str] | None) -> None:
        self.model = model
        self.features = features


def _booster_class() -> Any:
    import xgboost

    return xgboost.Booster


def _feature_names(obj: Any) -> list[str] | None:
    booster = obj if isinstance(obj, _booster_class()) else obj.get_booster()
    names = booster.feature_names
    return [str(n) for n in names] if names else None


def _frame(features: list[str] | None, batch: Any) -> Any:
    """The batch as the float DataFrame the model was trained on (its feature names and order)."""
    import pandas as pd

    matrix = batch.to_numpy("float64")
    if matrix.ndim != 2:
        raise InvalidInput(f"XGBoost models take a table, not a {matrix.ndim}-D tensor", field="inputs",
                           value=list(matrix.shape), hint="send one column per feature")
    if features and len(features) == matrix.shape[1]:
        frame = pd.DataFrame(matrix, columns=batch.names, copy=False)
        if set(batch.names) == set(features):
            return frame[features]
        return pd.DataFrame(matrix, columns=features, copy=False)
    return pd.DataFrame(matrix, copy=False)
