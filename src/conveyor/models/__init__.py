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
``sklearn`` (skops), ``keras``
(``.keras`` file, loaded in safe mode), ``pytorch`` (TorchScript, or ``state_dict`` +
``factory="module:function"``, loaded with ``weights_only=True``), ``onnx``
(onnxruntime) and ``pyfunc`` (a plain class with ``predict``, stored as a
``"module:Class"`` reference plus JSON/``.npz`` state — never a pickle, so the class must
be importable where the model is loaded, and its state made of JSON values and arrays).
No flavor ever unpickles: loading a package never runs code from the package itself.

Trust (``_trust``, docs/models-trust.md): every class or callable a package names (skops
types and functions, the pyfunc class, the PyTorch factory, Keras classes) is checked
against one ``TrustPolicy`` before anything is imported — classes from ``[models]
trusted_modules`` (default ``DEFAULT_TRUSTED_MODULES``), callables only when named in
full; ``trusted=[...]``, ``--trust`` and ``set_trust`` add names. Every file a package
names must be a regular file inside the folder with the size recorded at save time.

The signature is enforced on every predict (missing, extra or mistyped columns and NaN in
non-nullable columns raise ``InvalidInput`` naming them). This package reads the
``[models]`` section of ``conveyor.toml`` (``trusted_modules``).
"""

from conveyor.models._checks import FlavorCase, check_flavor, flavor_checks
from conveyor.models._convert import to_onnx
from conveyor.models._flavor import ENTRY_POINT_GROUP, FLAVORS, Flavor, flavor_for, flavor_names, get_flavor
from conveyor.models._infer import infer_signature
from conveyor.models._loaded import LoadedModel
from conveyor.models._meta import FORMAT_VERSION, META_FILE, ModelMeta, read_meta
from conveyor.models._package import ModelInfo, load, load_folder, load_from_store, log, save
from conveyor.models._skops import load_skops, skops_references
from conveyor.models._trust import DEFAULT_TRUSTED_MODULES, Reference, TrustPolicy, UntrustedTypes, current_trust, set_trust
from conveyor.models._validate import Batch, Validator

__all__ = [
    "Batch",
    "DEFAULT_TRUSTED_MODULES",
    "ENTRY_POINT_GROUP",
    "FLAVORS",
    "FORMAT_VERSION",
    "Flavor",
    "FlavorCase",
    "LoadedModel",
    "META_FILE",
    "ModelInfo",
    "ModelMeta",
    "Reference",
    "TrustPolicy",
    "UntrustedTypes",
    "Validator",
    "check_flavor",
    "current_trust",
    "flavor_checks",
    "flavor_for",
    "flavor_names",
    "get_flavor",
    "infer_signature",
    "load",
    "load_folder",
    "load_from_store",
    "load_skops",
    "log",
    "read_meta",
    "save",
    "set_trust",
    "skops_references",
    "to_onnx",
]
