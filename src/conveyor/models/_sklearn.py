"""scikit-learn flavor: skops files, loaded only when the trust policy accepts what they name.

skops rebuilds objects from a JSON schema instead of unpickling. Every class and callable
the file names is checked against the one trust policy (``_trust``, ``_skops``): classes
from ``[models] trusted_modules`` (scikit-learn, NumPy, SciPy by default) load, so do the
callables skops vets (NumPy/SciPy ufuncs); anything else — a custom transformer, a
function such as ``os.system`` inside a ``FunctionTransformer`` — loads only when named
(``--trust``, ``trusted=[...]``). The fix for MLflow CVE-2024-37052-style pickles.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from conveyor.models._flavor import Flavor
from conveyor.models._skops import load_checked, skops_references
from conveyor.models._trust import Reference, UntrustedTypes

__all__ = ["SklearnFlavor", "UntrustedTypes"]

FILE = "model.skops"


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

    def references(self, files: Any, config: Mapping[str, Any]) -> list[Reference]:
        return skops_references(files.path(config.get("file", FILE), field="flavor_config.file"))

    def load(self, folder: Path, config: Mapping[str, Any], **opts: Any) -> Any:
        # load_folder has checked ``references`` against the policy; skops audits them again
        path = opts["files"].path(config.get("file", FILE), field="flavor_config.file")
        model = load_checked(path, opts["references"])
        return _Sklearn(model, _numpy_twin(model, opts.get("example")))

    def native(self, model: Any) -> Any:
        return model.model

    def predict(self, model: Any, batch: Any) -> Any:
        if model.twin is not None:
            return model.twin.predict(batch.to_numpy())
        return model.model.predict(model.input(batch))

    def has_proba(self, model: Any, config: Mapping[str, Any]) -> bool:
        return hasattr(model.model, "predict_proba")

    def predict_proba(self, model: Any, batch: Any) -> Any:
        if not hasattr(model.model, "predict_proba"):
            return super().predict_proba(model, batch)
        if model.twin is not None:
            return model.twin.predict_proba(batch.to_numpy())
        return model.model.predict_proba(model.input(batch))

    def native_predict(self, model: Any, example: Any) -> Any:
        return model.predict(example)

    def native_proba(self, model: Any, example: Any) -> tuple[Any, Any] | None:
        return classifier_proba(model, example)


def classifier_proba(model: Any, example: Any) -> tuple[Any, Any] | None:
    """``(predict_proba(example), classes_)`` of a single-output classifier with both, else None
    (shared by the flavors whose models follow scikit-learn's classifier API)."""
    import numpy as np

    classes = getattr(model, "classes_", None)
    if not hasattr(model, "predict_proba") or classes is None or np.ndim(classes) != 1:
        return None
    return model.predict_proba(example), classes


class _Sklearn:
    __slots__ = ("model", "twin")

    def __init__(self, model: Any, twin: Any) -> None:
        self.model = model
        self.twin = twin

    def input(self, batch: Any) -> Any:
        # fitted on a DataFrame: sklearn checks the column names (and warns without them)
        if batch.matrix is None or getattr(self.model, "feature_names_in_", None) is not None:
            return batch.to_frame()
        return batch.to_numpy()


def _estimators(obj: Any, depth: int = 0) -> Any:
    from sklearn.base import BaseEstimator

    if depth > 8:
        return
    if isinstance(obj, BaseEstimator):
        yield obj
        for value in vars(obj).values():
            yield from _estimators(value, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _estimators(value, depth + 1)


def _numpy_twin(model: Any, example: Any) -> Any:
    """A copy of a DataFrame-fitted model that takes a plain ndarray, or None.

    scikit-learn's DataFrame input path (column-name checks, pandas conversion) costs ~10x
    the ndarray path for one row. When every feature is numeric, the columns are in the
    signature's order and no step selects columns by name, a copy without
    ``feature_names_in_`` predicts the same from the validated matrix; that is verified on
    the package's input example (any warning or difference: no twin). Costs one extra
    copy of the model in memory.
    """
    import copy
    import warnings

    import numpy as np
    import pandas as pd

    names = getattr(model, "feature_names_in_", None)
    if names is None or not isinstance(example, pd.DataFrame) or list(names) != list(example.columns):
        return None
    if not all(isinstance(t, np.dtype) and t.kind in "biuf" for t in example.dtypes):
        return None
    if any(type(e).__name__ == "ColumnTransformer" for e in _estimators(model)):
        return None
    twin = copy.deepcopy(model)
    for estimator in _estimators(twin):
        estimator.__dict__.pop("feature_names_in_", None)
    matrix = np.column_stack([example[c].to_numpy(dtype="float64") for c in example.columns])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            same = np.array_equal(twin.predict(matrix), model.predict(example))
        except Exception:  # noqa: BLE001 - any trouble means: keep the DataFrame path
            return None
    return twin if same else None

