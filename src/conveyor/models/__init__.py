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

Flavors (``FLAVORS``; third parties add entry points in the ``conveyor.flavors`` group),
each with what it stores and how it is loaded:

- ``sklearn``: a skops archive (zip of JSON + ``.npy``), rebuilt by skops, which
  instantiates only trusted types unless ``trusted=[...]``; no pickle.
- ``keras``: the ``.keras`` zip (``config.json`` + HDF5 weights) loaded with
  ``safe_mode=True``, refused on Keras older than 3.15.0, whose safe mode had published
  bypasses; legacy ``.h5`` files are never loaded; no pickle.
- ``pytorch``: **zip archives that do contain pickle-format streams**. TorchScript
  (``torch.jit.save``: ``data.pkl``, ``constants.pkl``, ``code/*.debug_pkl`` plus TorchScript
  source in ``code/``) is read by ``torch.jit.load``, whose C++ unpickler rebuilds only
  TorchScript values (tensors, containers, TorchScript classes) and never imports Python
  callables, and the archive's TorchScript program runs on predict (PyTorch treats models
  as programs: load TorchScript only from sources you trust). A ``state_dict``
  (``torch.save``: ``data.pkl``) is read by ``torch.load(weights_only=True)``, PyTorch's
  restricted unpickler that accepts only tensors, primitive types and containers (safe
  from torch 2.6 on: CVE-2025-32434), then loaded into the module the factory builds.
- ``onnx``: the ONNX protobuf, run by onnxruntime; no pickle.
- ``xgboost``: XGBoost's own UBJSON (``model.ubj``) or JSON; no pickle.
- ``lightgbm``: LightGBM's own text model (``model.txt``); no pickle.
- ``pyfunc``: a ``"module:Class"`` reference plus JSON/``.npz`` state (``allow_pickle=False``),
  so the class must be importable where the model is loaded; no pickle.

Every class, callable and file a package names goes through one trust policy before it is
imported, called or read (``[models] trusted_modules``, ``--trust``; see docs/models-trust.md).
No flavor calls Python's ``pickle`` module; the only pickle-format streams in any package are
PyTorch's, read by the restricted unpicklers above. The flavor suite (``flavor_checks``)
holds every flavor to that: it parses each file of a saved package and each member of its
zip archives with ``pickletools`` and fails any pickle the flavor has not declared in
``Flavor.restricted_pickles``. Input examples are JSON or ``.npz`` read with
``allow_pickle=False``.

Trust (``_trust``, docs/models-trust.md): every class or callable a package names (skops
types and functions, the pyfunc class, the PyTorch factory, Keras classes) is checked
against one ``TrustPolicy`` before anything is imported — classes from ``[models]
trusted_modules`` (default ``DEFAULT_TRUSTED_MODULES``), callables only when named in
full; ``trusted=[...]``, ``--trust`` and ``set_trust`` add names. Every file a package
names must be a regular file inside the folder with the size recorded at save time.

The signature is enforced on every predict (missing, extra or mistyped columns and NaN in
non-nullable columns raise ``InvalidInput`` naming them). An inferred signature marks a
column nullable when the example misses values in it or the model predicts with it
missing (``_infer.probe_nullable``; docs/models.md). This package reads the
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
