"""Keras (TensorFlow) flavor: the native ``.keras`` file, loaded with ``safe_mode=True``.

Safe mode refuses Python lambdas stored in the file, so loading runs no code from it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from conveyor.errors import CorruptObject
from conveyor.models._flavor import Flavor
from conveyor.models._trust import UntrustedTypes

FILE = "model.keras"


class KerasFlavor(Flavor):
    name: ClassVar[str] = "keras"
    requirements: ClassVar[tuple[str, ...]] = ("keras", "tensorflow", "tensorflow-cpu")

    def can_handle(self, obj: Any) -> bool:
        if "keras" not in sys.modules:
            return False
        import keras

        return isinstance(obj, keras.Model)

    def save(self, obj: Any, folder: Path, **options: Any) -> dict[str, Any]:
        self.reject_options(options)
        obj.save(folder / FILE)
        dtype = getattr(obj.inputs[0], "dtype", "float32") if getattr(obj, "inputs", None) else "float32"
        return {"file": FILE, "input_dtype": str(dtype)}

    def load(self, folder: Path, config: Mapping[str, Any], **opts: Any) -> Any:
        import keras

        path = opts["files"].path(config.get("file", FILE), field="flavor_config.file")
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except ValueError as exc:
            if "safe_mode" not in str(exc) and "unsafe" not in str(exc).lower():
                raise CorruptObject(f"{path.name} is not a loadable Keras file: {exc}") from None
            raise UntrustedTypes(
                f"{path.name} holds Python code (a Lambda layer or a function) that Keras refuses in safe mode",
                field="flavor_config.file", value=path.name,
                hint="rebuild the model without Lambda layers (a custom layer class registered with "
                "keras.saving.register_keras_serializable), or load the .keras file yourself if you trust it",
            ) from None
        return _Keras(model, str(config.get("input_dtype", "float32")))

    def native(self, model: Any) -> Any:
        return model.model

    def predict(self, model: Any, batch: Any) -> Any:
        import numpy as np

        # calling the model directly skips Model.predict's per-call dataset machinery,
        # which dominates for the one-row requests serving sends
        return np.asarray(model.model(batch.to_numpy(model.dtype), training=False))

    def native_predict(self, model: Any, example: Any) -> Any:
        import numpy as np

        data = example.to_numpy() if hasattr(example, "to_numpy") else example
        return np.asarray(model(np.asarray(data, dtype="float32"), training=False))


class _Keras:
    __slots__ = ("model", "dtype")

    def __init__(self, model: Any, dtype: str) -> None:
        self.model = model
        self.dtype = dtype
