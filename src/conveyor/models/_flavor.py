"""The flavor contract and the plugin table.

A flavor turns one framework's model object into files and back, and answers predict.
Built-in flavors are declared as data (``name → "module:Class"``), third-party ones through
the entry-point group ``conveyor.flavors``; both are imported only when first used, so
``import conveyor.models`` never imports TensorFlow or torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from conveyor.errors import ConfigError, InvalidInput, NotFound

ENTRY_POINT_GROUP = "conveyor.flavors"

#: Built-in flavors, in the order ``flavor_for`` asks them (XGBoost and LightGBM before
#: sklearn, whose estimator API their wrappers share; pyfunc last: it takes anything with a
#: ``predict`` method).
FLAVORS: Mapping[str, str] = {
    "xgboost": "conveyor.models._xgboost:XGBoostFlavor",
    "lightgbm": "conveyor.models._lightgbm:LightGBMFlavor",
    "sklearn": "conveyor.models._sklearn:SklearnFlavor",
    "keras": "conveyor.models._keras:KerasFlavor",
    "pytorch": "conveyor.models._torch:TorchFlavor",
    "onnx": "conveyor.models._onnx:OnnxFlavor",
    "pyfunc": "conveyor.models._pyfunc:PyfuncFlavor",
}


class Flavor:
    """Base class of every flavor (built-in or plugin). Subclasses set ``name`` and
    ``requirements`` and implement the four methods; ``predict_proba`` is optional.

    - ``can_handle(obj)``: cheap and import-free (check ``sys.modules`` before isinstance).
    - ``save(obj, folder, **options) -> dict``: write files into ``folder`` (never a pickle)
      and return a JSON-serialisable config stored as ``flavor_config``.
    - ``load(folder, config, **opts)``: rebuild the native model from those files. ``opts``
      carry ``files`` (a ``PackageFiles``: open files only through ``files.path(name, field=...)``),
      ``trusted`` (the ``TrustPolicy``), ``references`` (what ``references`` returned, already
      accepted by the policy) and ``example``.
    - ``references(files, config)`` (optional): the classes and callables the files name, read
      without importing anything; ``load_folder`` checks them against the trust policy first.
    - ``predict(model, batch)``: a validated ``Batch`` in, an ndarray with one row per input row out.
    """

    name: ClassVar[str] = ""
    #: distributions pinned in the package's requirements (numpy and pandas are added)
    requirements: ClassVar[tuple[str, ...]] = ()
    #: pickle-format archive members this flavor writes that only a restricted unpickler
    #: reads, as ``{file: (glob of member path, …)}`` (PyTorch's ``data.pkl``); the flavor
    #: suite fails every other pickle stream in a package
    restricted_pickles: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def can_handle(self, obj: Any) -> bool:
        raise NotImplementedError

    def save(self, obj: Any, folder: Path, **options: Any) -> dict[str, Any]:
        raise NotImplementedError

    def load(self, folder: Path, config: Mapping[str, Any], **opts: Any) -> Any:
        raise NotImplementedError

    def predict(self, model: Any, batch: Any) -> Any:
        raise NotImplementedError

    def references(self, files: Any, config: Mapping[str, Any]) -> list[Any]:
        """The code this package names (``conveyor.models.Reference`` list); none by default."""
        return []

    def native(self, model: Any) -> Any:
        """The framework's own model object inside what ``load`` returned."""
        return model

    def has_proba(self, model: Any, config: Mapping[str, Any]) -> bool:
        return False

    def predict_proba(self, model: Any, batch: Any) -> Any:
        raise InvalidInput(
            f"{self.name} models do not offer predict_proba", field="method", value="predict_proba", hint="call predict"
        )

    def native_predict(self, model: Any, example: Any) -> Any:
        """The model's own prediction on an input example, used to infer output specs."""
        return None

    def example_outputs(self, model: Any, example: Any, config: Mapping[str, Any]) -> tuple[Any, Any]:
        """``(prediction, (probabilities, classes) or None)`` of the native model on the input
        example, recorded in the signature; ``config`` is what ``save`` returned."""
        return self.native_predict(model, example), self.native_proba(model, example)

    def native_proba(self, model: Any, example: Any) -> tuple[Any, Any] | None:
        """``(probabilities, class labels)`` of the native model on an input example, recorded
        in the signature as its probability output; None when the model has no predict_proba."""
        return None

    def reject_options(self, options: Mapping[str, Any], known: tuple[str, ...] = ()) -> None:
        """Refuse save options this flavor does not know (``example`` is always passed)."""
        unknown = sorted(k for k in options if k != "example" and k not in known)
        if unknown:
            raise InvalidInput(
                f"unknown option(s) for the {self.name} flavor: {', '.join(unknown)}",
                field=unknown[0],
                value=options[unknown[0]],
                hint=f"this flavor takes: {', '.join(known) or 'no options'}",
            )


_cache: dict[str, Flavor] = {}


def _plugins() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def flavor_names() -> list[str]:
    """Built-in flavors first (in lookup order), then installed plugins."""
    names = list(FLAVORS)
    names += sorted(n for n in _plugins() if n not in FLAVORS)
    return names


def get_flavor(name: str) -> Flavor:
    """The flavor registered under ``name`` (built-in or ``conveyor.flavors`` entry point).

    Example::

        >>> get_flavor("sklearn").name
        'sklearn'
    """
    cached = _cache.get(name)
    if cached is not None:
        return cached
    target = FLAVORS.get(name) or _plugins().get(name)
    if target is None:
        raise NotFound("flavor", name, hint=f"known flavors: {', '.join(flavor_names())}")
    flavor = load_reference(target, what="flavor")()
    if not isinstance(flavor, Flavor):
        raise ConfigError(
            f"flavor {name!r} ({target}) is not a conveyor.models.Flavor", field="flavor", value=target
        )
    _cache[name] = flavor
    return flavor


def flavor_for(obj: Any) -> Flavor:
    """The first flavor whose ``can_handle`` accepts ``obj``; the error lists all flavors."""
    names = flavor_names()
    # plugins are asked before pyfunc, which accepts anything with predict
    ordered = [n for n in names if n != "pyfunc"] + ["pyfunc"]
    for name in ordered:
        try:
            flavor = get_flavor(name)
        except ImportError:
            continue  # its framework is not installed, so obj cannot be one of its models
        if flavor.can_handle(obj):
            return flavor
    raise InvalidInput(
        f"no flavor can save a {type(obj).__module__}.{type(obj).__qualname__}",
        field="model",
        value=type(obj).__qualname__,
        hint=f"flavors: {', '.join(names)}; pass flavor=..., give the object a predict method, "
        f"or register a plugin under the {ENTRY_POINT_GROUP!r} entry-point group",
    )


def load_reference(reference: str, *, what: str) -> Any:
    """Import ``"package.module:Attr"`` (the format of flavors, factories and pyfunc classes)."""
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidInput(
            f"{what} reference {reference!r} is not 'module:name'", field=what, value=reference,
            hint="write it as package.module:Name",
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise NotFound(what, reference, hint=f"module {module_name!r} is not importable: install it") from exc
        raise
    value: Any = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise NotFound(what, reference, hint=f"{module_name} has no attribute {attr!r}") from None
    return value


def import_trusted(reference: str, *, what: str, policy: Any, kind: str = "callable") -> Any:
    """``load_reference`` for a name that comes from a package: the policy decides before any import."""
    from conveyor.models._trust import Reference

    policy.check([Reference(str(reference).replace(":", ".", 1), kind)], source=f"the package's {what}")  # type: ignore[arg-type]
    return load_reference(str(reference), what=what)


def reference_of(obj: Any) -> str:
    """The ``"module:Qualname"`` of a class or function, refusing ones no other process can import."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<locals>" in qualname:
        raise InvalidInput(
            f"{qualname or obj!r} cannot be referenced from another process (defined in {module or '?'})",
            field="model",
            value=qualname,
            hint="define it at the top level of an importable module (not __main__, not inside a function)",
        )
    return f"{module}:{qualname}"
