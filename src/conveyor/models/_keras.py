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
        """``classes=[label, …]`` marks a classifier whose output is class probabilities (one
        softmax column per class, or one sigmoid column for the second of two classes):
        predict then answers labels and predict_proba the probabilities."""
        classes = options.pop("classes", None)
        self.reject_options(options, ("classes",))
        config: dict[str, Any] = {"file": FILE}
        if classes is not None:
            from conveyor.models._infer import json_labels

            labels = list(json_labels(classes))
            width = int(obj.outputs[0].shape[-1]) if getattr(obj, "outputs", None) else -1
            if len(labels) < 2 or width not in (len(labels), 1) or (width == 1 and len(labels) != 2):
                raise InvalidInput(
                    f"classes names {len(labels)} labels for a model with {width} output column(s)", field="classes",
                    value=labels, hint="one label per softmax column, or two labels for a single sigmoid column")
            config["classes"] = labels
        obj.save(folder / FILE)
        dtype = getattr(obj.inputs[0], "dtype", "float32") if getattr(obj, "inputs", None) else "float32"
        return {**config, "input_dtype": str(dtype)}

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
        classes = config.get("classes")
        if classes is not None and not (isinstance(classes, list) and len(classes) >= 2):
            raise InvalidInput(f"keras flavor_config classes {classes!r} is not a list of labels",
                               field="flavor_config.classes", value=classes, hint="re-save the model")
        return _Keras(model, str(config.get("input_dtype", "float32")), classes)

    def native(self, model: Any) -> Any:
        return model.model

    def _raw(self, model: Any, batch: Any) -> Any:
        import numpy as np

        # calling the model directly skips Model.predict's per-call dataset machinery,
        # which dominates for the one-row requests serving sends
        return np.asarray(model.model(batch.to_numpy(model.dtype), training=False))

    def predict(self, model: Any, batch: Any) -> Any:
        raw = self._raw(model, batch)
        return raw if model.classes is None else _labels(raw, model.classes)

    def has_proba(self, model: Any, config: Mapping[str, Any]) -> bool:
        return model.classes is not None

    def predict_proba(self, model: Any, batch: Any) -> Any:
        if model.classes is None:
            return super().predict_proba(model, batch)
        return _proba(self._raw(model, batch))

    def example_outputs(self, model: Any, example: Any, config: Mapping[str, Any]) -> tuple[Any, Any]:
        raw = self.native_predict(model, example)
        classes = config.get("classes")
        if classes is None:
            return raw, None
        return _labels(raw, classes), (_proba(raw), classes)

    def native_predict(self, model: Any, example: Any) -> Any:
        import numpy as np

        data = example.to_numpy() if hasattr(example, "to_numpy") else example
        return np.asarray(model(np.asarray(data, dtype="float32"), training=False))


def _proba(raw: Any) -> Any:
    import numpy as np

    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim == 2 and raw.shape[1] == 1:  # one sigmoid column: the second class's probability
        return np.column_stack([1.0 - raw[:, 0], raw[:, 0]])
    return raw


def _labels(raw: Any, classes: Any) -> Any:
    import numpy as np

    return np.asarray(classes)[np.argmax(_proba(raw), axis=1)]


class _Keras:
    __slots__ = ("model", "dtype", "classes")

    def __init__(self, model: Any, dtype: str, classes: Any = None) -> None:
        self.model = model
        self.dtype = dtype
        self.classes = classes
