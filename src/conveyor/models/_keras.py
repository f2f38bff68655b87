"""Keras (TensorFlow) flavor: the native ``.keras`` file, loaded with ``safe_mode=True``.

Safe mode refuses Python lambdas stored in the file, so loading runs no code from it.
Before Keras sees the file, every ``module`` + ``class_name`` its ``config.json`` names
goes through the trust policy (``keras`` is trusted by default; a custom layer's module
must be trusted, a function stored by reference named in full).
"""

from __future__ import annotations

import json
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from conveyor.errors import CorruptObject
from conveyor.models._flavor import Flavor
from conveyor.models._trust import Reference, UntrustedTypes

FILE = "model.keras"
MAX_CONFIG_BYTES = 64 * 1024 * 1024


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

    def references(self, files: Any, config: Mapping[str, Any]) -> list[Reference]:
        """Classes (and functions) ``config.json`` names by module; Keras resolves the rest itself."""
        path = files.path(config.get("file", FILE), field="flavor_config.file")
        try:
            with zipfile.ZipFile(path) as archive:
                info = archive.getinfo("config.json")
                if info.file_size > MAX_CONFIG_BYTES:
                    raise CorruptObject(f"{path.name}: config.json is over {MAX_CONFIG_BYTES} bytes")
                tree = json.loads(archive.read(info))
        except (zipfile.BadZipFile, KeyError, ValueError, RecursionError) as exc:
            raise CorruptObject(f"{path.name} is not a .keras file: {exc}") from None
        refs: set[Reference] = set()
        stack = [tree]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                module, name = node.get("module"), node.get("class_name")
                if isinstance(module, str) and isinstance(name, str):
                    if name == "function":  # a function stored by reference: called, so named in full
                        refs.add(Reference(f"{module}.{node.get('config')}", "callable"))
                    else:
                        refs.add(Reference(f"{module}.{name}", "class"))
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        return sorted(refs)

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
