"""Model packages: save, log and load models of any framework behind one ``predict``.

    import conveyor, conveyor.models

    with conveyor.start_run():
        info = conveyor.models.log(clf, "model", input_example=X_train[:5])
    model = conveyor.models.load(info.uri)          # or a folder path
    model.predict([{"age": 41, "income": 52000.0}])  # DataFrame, ndarray or list of dicts

A package is a folder holding ``conveyor-model.json`` and the flavor's files::

    {
      "format_version": 1,
      "flavor": "sklearn",                       # a key of FLAVORS or a plugin name
      "flavor_config": {"file": "model.skops", …},  # the flavor's own entry
      "signature": {"inputs": [ColumnSpec…], "outputs": […]},   # Signature.to_dict() or null
      "input_example": "input_example.json",     # split-orient JSON, or .npz for tensors
      "requirements": ["numpy==…", "pandas==…", "scikit-learn==…", "skops==…"],
      "conveyor_version": "0.1.0", "python_version": "3.11.9",
      "created_at": "2026-11-27T09:00:00Z", "metadata": {…}
    }

Flavors (``FLAVORS``; third parties add entry points in the ``conveyor.flavors`` group):
``sklearn`` (skops; only trusted types load unless ``trusted=[...]``), ``keras``
(``.keras`` file, loaded in safe mode), ``pytorch`` (TorchScript, or ``state_dict`` +
``factory="module:function"``, loaded with ``weights_only=True``), ``onnx``
(onnxruntime) and ``pyfunc`` (a plain class with ``predict``, stored as a
``"module:Class"`` reference plus JSON/``.npz`` state — never a pickle, so the class must
be importable where the model is loaded, and its state made of JSON values and arrays).
No flavor ever unpickles: loading a package never runs code from the package itself.

The signature is enforced on every predict (missing, extra or mistyped columns and NaN in
non-nullable columns raise ``InvalidInput`` naming them). This package reads no
``conveyor.toml`` section.
"""

from conveyor.models._checks import FlavorCase, check_flavor, flavor_checks
from conveyor.models._convert import to_onnx
from conveyor.models._flavor import ENTRY_POINT_GROUP, FLAVORS, Flavor, flavor_for, flavor_names, get_flavor
from conveyor.models._infer import infer_signature
from conveyor.models._loaded import LoadedModel
from conveyor.models._meta import FORMAT_VERSION, META_FILE, ModelMeta, read_meta
from conveyor.models._package import ModelInfo, load, load_folder, load_from_store, log, save
from conveyor.models._sklearn import UntrustedTypes
from conveyor.models._validate import Batch, Validator

__all__ = [
    "Batch",
    "ENTRY_POINT_GROUP",
    "FLAVORS",
    "FORMAT_VERSION",
    "Flavor",
    "FlavorCase",
    "LoadedModel",
    "META_FILE",
    "ModelInfo",
    "ModelMeta",
    "UntrustedTypes",
    "Validator",
    "check_flavor",
    "flavor_checks",
    "flavor_for",
    "flavor_names",
    "get_flavor",
    "infer_signature",
    "load",
    "load_folder",
    "load_from_store",
    "log",
    "read_meta",
    "save",
    "to_onnx",
]
