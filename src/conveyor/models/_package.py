"""save / log / load of model packages (a folder: ``conveyor-model.json`` + flavor files)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from conveyor.entities import Signature
from conveyor.errors import AlreadyExists, InvalidInput, NotFound
from conveyor.models._files import PackageFiles
from conveyor.models._flavor import Flavor, flavor_for, get_flavor
from conveyor.models._infer import (
    example_frame_or_array,
    infer_outputs,
    infer_probabilities,
    infer_signature,
    probe_nullable,
)
from conveyor.models._loaded import LoadedModel
from conveyor.models._meta import META_FILE, ModelMeta, now_iso, pin_requirements, python_version, read_meta
from conveyor.models._trust import TrustPolicy, as_policy

if TYPE_CHECKING:
    from conveyor.blobs import BlobStore
    from conveyor.tracking import Tracker

#: what ``trusted=`` accepts: a policy, extra names on top of the process's policy, or None
Trust = TrustPolicy | Sequence[str] | None
EXAMPLE_JSON = "input_example.json"
EXAMPLE_NPZ = "input_example.npz"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What ``save``/``log`` wrote: where it is, and its description."""

    meta: ModelMeta
    path: Path | None = None
    uri: str | None = None  # runs:/<id>/<name> once logged
    run_id: str | None = None
    artifact_path: str | None = None
    digest: str | None = None  # manifest digest of the package in the artifact store
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def flavor(self) -> str:
        return self.meta.flavor

    @property
    def signature(self) -> Signature | None:
        return self.meta.signature

    @property
    def requirements(self) -> tuple[str, ...]:
        return self.meta.requirements


def save(
    model: Any,
    path: str | Path,
    *,
    signature: Signature | Literal["infer"] | None = "infer",
    input_example: Any = None,
    flavor: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    **options: Any,
) -> ModelInfo:
    """Write ``model`` as a package folder at ``path``.

    ``signature="infer"`` infers it from ``input_example`` and the model's output on it
    (no example: no signature, so predict is not checked). ``flavor`` picks one explicitly;
    ``options`` go to the flavor (e.g. ``factory="pkg.nets:build"`` for a PyTorch state_dict).

    Example::

        >>> info = save(clf, "model/", input_example=X[:5])  # doctest: +SKIP
        >>> info.signature.input_names                       # doctest: +SKIP
        ['sepal_length', ...]
    """
    target = Path(path)
    occupied = any(target.iterdir()) if target.is_dir() else target.exists()
    if occupied:
        if not overwrite:
            raise AlreadyExists("model package folder", str(target), hint="pass overwrite=True or pick an empty folder")
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    chosen = get_flavor(flavor) if flavor else flavor_for(model)
    if flavor and not chosen.can_handle(model):
        raise InvalidInput(
            f"flavor {flavor!r} cannot save a {type(model).__qualname__}",
            field="flavor",
            value=flavor,
            hint="leave flavor unset to pick one automatically",
        )
    example = example_frame_or_array(input_example) if input_example is not None else None
    target.mkdir(parents=True, exist_ok=True)
    try:
        config = chosen.save(model, target, example=example, **options)
        sig = _signature(chosen, model, signature, example, config)
        example_file = _write_example(target, example)
        references = chosen.references(PackageFiles(target), config)
        meta = ModelMeta(
            flavor=chosen.name,
            flavor_config=config,
            signature=sig,
            input_example=example_file,
            requirements=pin_requirements(chosen.requirements + tuple(config.get("extra_requirements", ()))),
            conveyor_version=_conveyor_version(),
            python_version=python_version(),
            created_at=now_iso(),
            metadata=dict(metadata or {}),
            files=PackageFiles(target).sizes,
            references=tuple(r.to_dict() for r in references),
        )
        json.dumps(meta.to_dict())  # fail here, not at load, when a flavor config is not JSON
        meta.write(target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return ModelInfo(meta, path=target)


def _signature(flavor: Flavor, model: Any, signature: Any, example: Any, config: Mapping[str, Any]) -> Signature | None:
    if signature is None or isinstance(signature, Signature):
        return signature
    if signature != "infer":
        raise InvalidInput(
            f"signature {signature!r} is not valid", field="signature", value=signature,
            hint='pass "infer", a conveyor.entities.Signature, or None',
        )
    if example is None:
        return None
    inferred = infer_signature(example)
    try:
        output = flavor.native_predict(model, example)
    except Exception:  # noqa: BLE001 - outputs are optional; a failing example predict is the user's to see later
        return Signature(inferred.inputs, ())
    if output is None:  # a flavor without a native predict: nothing to probe with
        return inferred
    inputs = probe_nullable(lambda batch: flavor.native_predict(model, batch), example, inferred.inputs)
    try:
        output, proba = flavor.example_outputs(model, example, config)
    except Exception:  # noqa: BLE001 - a classifier whose predict_proba fails here fails at serving too, visibly
        proba = None
    return Signature(inputs, infer_outputs(output), infer_probabilities(*proba) if proba is not None else None)


def _write_example(folder: Path, example: Any) -> str | None:
    import numpy as np

    if example is None:
        return None
    if isinstance(example, np.ndarray):
        np.savez(folder / EXAMPLE_NPZ, input=example)
        return EXAMPLE_NPZ
    (folder / EXAMPLE_JSON).write_text(example.to_json(orient="split", index=False, date_format="iso"), "utf-8")
    return EXAMPLE_JSON


def read_example(folder: Path | PackageFiles, name: str | None) -> Any:
    """The stored input example (DataFrame or ndarray), or None."""
    if not name:
        return None
    files = folder if isinstance(folder, PackageFiles) else PackageFiles(folder)
    path = files.path(name, field="input_example")
    if name.endswith(".npz"):
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            return data["input"]
    import io

    import pandas as pd

    return pd.read_json(io.StringIO(path.read_text("utf-8")), orient="split")


def _conveyor_version() -> str:
    from conveyor._version import __version__

    return __version__


def load(uri_or_path: str | Path, *, trusted: Trust = None, tracker: Tracker | None = None) -> LoadedModel:
    """Load a package from a folder or ``runs:/<run_id>/<path>`` (via ``tracker`` or the default one).

    ``trusted``: extra modules or full names (``"mypkg.features.clean"``) on top of the
    process's trust policy (``[models] trusted_modules``), or a ``TrustPolicy``. A package
    naming any class or callable the policy refuses raises ``UntrustedTypes`` before
    anything is imported (see docs/models-trust.md).

    Example::

        >>> model = load("runs:/0a1b2c/model")  # doctest: +SKIP
        >>> model.predict(X_test)               # doctest: +SKIP
    """
    text = str(uri_or_path)
    if text.startswith("runs:/"):
        from conveyor.tracking import get_tracker, parse_run_uri

        ref = parse_run_uri(text)
        active = tracker or get_tracker()
        artifact = active.get_artifact(ref.run_id, ref.path or "model")
        if not artifact.is_dir:
            raise InvalidInput(f"{text} is a file, not a model package", field="uri", value=text)
        from conveyor.tracking._remote import RemoteTracker

        if isinstance(active, RemoteTracker):  # remote mode: the files come through the server
            with tempfile.TemporaryDirectory(prefix="conveyor-model-") as tmp:
                folder = active.download_artifact(ref.run_id, artifact.path, Path(tmp) / "model")
                return load_folder(folder, trusted=trusted, source=text)
        return load_from_store(active.blobs, artifact.digest, trusted=trusted, source=text)
    if text.startswith("models:/"):
        raise InvalidInput(
            f"{text} is a registry URI", field="uri", value=text, hint="use conveyor.registry.load_model for models:/ URIs"
        )
    folder = Path(text)
    if not folder.is_dir():
        raise NotFound("model package", text, hint=f"give a folder holding {META_FILE} or a runs:/<id>/<path> URI")
    return load_folder(folder, trusted=trusted, source=text)


def load_folder(folder: Path, *, trusted: Trust = None, source: str | None = None) -> LoadedModel:
    """Load the package in ``folder``: files checked, references trusted, then the flavor loads.

    Order matters: the description is read (size-capped, a regular file), every file is
    checked (regular, inside, the size it had when saved), every class or callable the
    package names is checked against the trust policy, and only then does the flavor import
    and read anything.
    """
    meta = read_meta(folder)
    flavor = get_flavor(meta.flavor)
    files = PackageFiles(folder, meta.files)
    policy = as_policy(trusted)
    config = meta.flavor_config
    references = flavor.references(files, config)
    policy.check(references, source=f"model package {source or str(folder)!r}")
    example = read_example(files, meta.input_example)
    try:
        native = flavor.load(folder, config, trusted=policy, references=references, files=files, example=example)
    except ModuleNotFoundError as exc:
        raise missing_framework(meta.flavor, exc) from None
    return LoadedModel(flavor, native, meta, source=source or str(folder), example=example)


#: The optional extra that brings each framework a flavor may import.
EXTRAS = {
    "onnxruntime": "onnx", "onnx": "onnx", "skl2onnx": "onnx", "keras": "tensorflow",
    "tensorflow": "tensorflow", "torch": "torch",
    "xgboost": "xgboost", "lightgbm": "lightgbm",
}


def missing_framework(what: str, exc: ModuleNotFoundError) -> InvalidInput:
    """A clear error for a framework that is not installed, naming the extra that brings it."""
    module = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(module)
    hint = f"pip install 'conveyor-mlops[{extra}]'" if extra else f"pip install {module}"
    return InvalidInput(f"{what} needs the {module!r} package, which is not installed",
                        field="flavor", value=what, hint=hint)


def load_from_store(
    blobs: BlobStore, digest: str, *, trusted: Trust = None, source: str | None = None
) -> LoadedModel:
    """Load a package stored as a manifest (``digest``) in an artifact store.

    The files are materialized in a temporary folder that is removed once the model is in
    memory (every built-in flavor reads its files fully on load).

    Example::

        >>> load_from_store(tracker.blobs, "blake3:9f…")  # doctest: +SKIP
    """
    from conveyor.blobs import Digest

    parsed = Digest.parse(digest)
    with tempfile.TemporaryDirectory(prefix="conveyor-model-") as tmp:
        folder = Path(tmp) / "model"
        blobs.get_tree(parsed, folder)
        return load_folder(folder, trusted=trusted, source=source or str(parsed))


def log(
    model: Any,
    name: str = "model",
    *,
    signature: Signature | Literal["infer"] | None = "infer",
    input_example: Any = None,
    flavor: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    tracker: Tracker | None = None,
    **options: Any,
) -> ModelInfo:
    """Save ``model`` and log the package to the active run (or ``run_id``) under ``name``.

    Example::

        >>> with conveyor.start_run():                                  # doctest: +SKIP
        ...     info = conveyor.models.log(clf, input_example=X[:5])
        >>> info.uri                                                      # doctest: +SKIP
        'runs:/0a1b2c.../model'
    """
    from conveyor.tracking import active_run, get_tracker

    if run_id is None:
        run = active_run()
        if run is None:
            raise InvalidInput(
                "no active run to log the model to", field="run_id", value=None,
                hint="call it inside `with conveyor.start_run():` or pass run_id=",
            )
        run_id = run.id
    active = tracker or get_tracker()
    with tempfile.TemporaryDirectory(prefix="conveyor-model-") as tmp:
        info = save(
            model, Path(tmp) / "model", signature=signature, input_example=input_example,
            flavor=flavor, metadata=metadata, **options,
        )
        artifact = active.log_artifacts(run_id, Path(tmp) / "model", name)
    return ModelInfo(
        info.meta, uri=f"runs:/{run_id}/{artifact.path}", run_id=run_id, artifact_path=artifact.path,
        digest=artifact.digest,
    )
