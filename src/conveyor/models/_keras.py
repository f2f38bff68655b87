"""Keras (TensorFlow) flavor: the native ``.keras`` file, loaded with ``safe_mode=True``.

Before Keras sees the file, every ``module`` + ``class_name`` its ``config.json`` names
goes through the trust policy (``keras`` is trusted by default; a custom layer's module
must be trusted, a function stored by reference named in full).
A ``.keras`` file is a zip of ``config.json`` (the architecture), ``metadata.json`` and
``model.weights.h5`` (HDF5); no pickle. Safe mode refuses Python lambdas and other code
stored in the config, so loading runs no code from it, on a Keras where safe mode holds:
older versions had published bypasses (a crafted ``config.json`` calling any function,
CVE-2025-1550, fixed in 3.9.0; turning safe mode off from inside the file,
CVE-2025-8747 / CVE-2025-9906, fixed in 3.11.0; CVE-2025-49655, fixed in 3.11.3; a
``TFSMLayer`` loading an attacker's SavedModel, CVE-2026-1462, fixed in 3.13.2/3.14.0) and
a crafted file exhausting memory on load (CVE-2026-12570, fixed in 3.15.0). Loading is
therefore refused on Keras older than ``MIN_KERAS``, with an error naming the upgrade.
Legacy HDF5 (``.h5``) models, where Keras ignores safe mode, are never loaded.
"""

from __future__ import annotations

import json
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from conveyor.errors import CorruptObject, InvalidInput
from conveyor.models._flavor import Flavor
from conveyor.models._trust import Reference, UntrustedTypes

FILE = "model.keras"
MAX_CONFIG_BYTES = 64 * 1024 * 1024
#: the oldest Keras with no known safe_mode bypass or load-time memory exhaustion (see above)
MIN_KERAS = "3.15.0"


def _require_keras_file(config: Mapping[str, Any]) -> None:
    """Only ``.keras`` files: Keras ignores ``safe_mode`` for legacy HDF5 (``.h5``) files."""
    if not str(config.get("file", FILE)).endswith(".keras"):
        raise InvalidInput(
            f"keras flavor_config names {config.get('file')!r}; only .keras files are loaded "
            "(Keras ignores safe_mode for legacy HDF5 files)", field="flavor_config.file",
            value=config.get("file"), hint="re-save the model with conveyor.models.save",
        )


def require_safe_keras(version: str) -> None:
    """Refuse to load with a Keras whose ``safe_mode`` has known bypasses."""
    from packaging.version import InvalidVersion, Version

    try:
        old = Version(version) < Version(MIN_KERAS)
    except InvalidVersion:
        old = True
    if old:
        raise InvalidInput(
            f"Keras {version} cannot load model packages safely: its safe_mode has known bypasses "
            f"(CVE-2025-1550, CVE-2025-8747, CVE-2025-9906, CVE-2025-49655, CVE-2026-1462) or a load-time "
            f"memory exhaustion (CVE-2026-12570); conveyor needs Keras >= {MIN_KERAS}",
            field="keras", value=version, hint=f"pip install 'keras>={MIN_KERAS}'",
        )


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
        _require_keras_file(config)
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

        require_safe_keras(str(keras.__version__))
        _require_keras_file(config)
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
