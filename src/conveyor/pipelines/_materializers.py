"""Materializers: how a step's return value becomes files in the artifact store and back.

The contract (every materializer, built-in or third-party, passes the shared test suite in
``tests/pipelines/test_materializers.py``):

- ``name`` — a stable identifier stored with each output, so loading uses the same one;
- ``handles(obj) -> bool`` — cheap, and must not import heavy modules unless ``obj``'s type
  comes from them;
- ``save(obj, folder)`` writes one or more files into the empty ``folder``;
- ``load(folder)`` returns an object equal (for the type's notion of equality) to the saved one.

Nothing is ever pickled: tables are Parquet, arrays ``.npy`` without pickle, scikit-learn
estimators skops, XGBoost/LightGBM/Keras/PyTorch models a model package in their own
format, the rest JSON, text or raw bytes. The table below is data
(``name → "module:Class"``), loaded lazily; third parties add entries through the
``conveyor.materializers`` entry-point group or :func:`register_materializer`.
"""

from __future__ import annotations

import importlib
import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from conveyor.errors import ConfigError, InvalidInput

ENTRY_POINT_GROUP = "conveyor.materializers"


@runtime_checkable
class Materializer(Protocol):
    """Save a Python object into a folder and load it back."""

    name: str

    def handles(self, obj: object) -> bool: ...

    def save(self, obj: Any, folder: Path) -> None: ...

    def load(self, folder: Path) -> Any: ...


def _module_of(obj: object) -> str:
    return type(obj).__module__.split(".", 1)[0]


class JsonMaterializer:
    """dict, list and JSON scalars (keys must be strings; NaN is allowed)."""

    name = "json"

    def handles(self, obj: object) -> bool:
        if not isinstance(obj, (dict, list, int, float, bool)) and obj is not None:
            return False
        try:
            json.dumps(obj, allow_nan=True)
        except (TypeError, ValueError):
            return False
        return True

    def save(self, obj: Any, folder: Path) -> None:
        (folder / "value.json").write_text(json.dumps(obj, sort_keys=True, allow_nan=True), encoding="utf-8")

    def load(self, folder: Path) -> Any:
        return json.loads((folder / "value.json").read_text(encoding="utf-8"))


class TextMaterializer:
    name = "text"

    def handles(self, obj: object) -> bool:
        return isinstance(obj, str)

    def save(self, obj: str, folder: Path) -> None:
        (folder / "value.txt").write_bytes(obj.encode("utf-8"))

    def load(self, folder: Path) -> str:
        return (folder / "value.txt").read_bytes().decode("utf-8")


class BytesMaterializer:
    name = "bytes"

    def handles(self, obj: object) -> bool:
        return isinstance(obj, (bytes, bytearray))

    def save(self, obj: bytes, folder: Path) -> None:
        (folder / "value.bin").write_bytes(bytes(obj))

    def load(self, folder: Path) -> bytes:
        return (folder / "value.bin").read_bytes()


class NumpyMaterializer:
    """``numpy.ndarray`` as ``.npy``; object arrays are refused (they would need pickle)."""

    name = "numpy"

    def handles(self, obj: object) -> bool:
        return _module_of(obj) == "numpy" and type(obj).__name__ == "ndarray" and obj.dtype != object  # type: ignore[attr-defined]

    def save(self, obj: Any, folder: Path) -> None:
        import numpy as np

        np.save(folder / "value.npy", obj, allow_pickle=False)

    def load(self, folder: Path) -> Any:
        import numpy as np

        return np.load(folder / "value.npy", allow_pickle=False)


class PandasMaterializer:
    """``pandas.DataFrame`` and ``Series`` as Parquet (index kept)."""

    name = "pandas"

    def handles(self, obj: object) -> bool:
        return _module_of(obj) == "pandas" and type(obj).__name__ in ("DataFrame", "Series")

    def save(self, obj: Any, folder: Path) -> None:
        series = type(obj).__name__ == "Series"
        frame = obj.to_frame(name=obj.name if obj.name is not None else "__series__") if series else obj
        frame.to_parquet(folder / "value.parquet")
        (folder / "kind.json").write_text(json.dumps({"series": series}), encoding="utf-8")

    def load(self, folder: Path) -> Any:
        import pandas as pd

        frame = pd.read_parquet(folder / "value.parquet")
        if json.loads((folder / "kind.json").read_text(encoding="utf-8"))["series"]:
            series = frame.iloc[:, 0]
            return series.rename(None) if series.name == "__series__" else series
        return frame


class SklearnMaterializer:
    """scikit-learn estimators with skops. Loading goes through the same trust policy as
    model packages (``conveyor.models.load_skops``: ``[models] trusted_modules``, callables
    only by full name); anything else in the file is refused instead of executed."""

    name = "sklearn"

    def handles(self, obj: object) -> bool:
        return _module_of(obj) == "sklearn" and hasattr(obj, "get_params")

    def save(self, obj: Any, folder: Path) -> None:
        import skops.io  # type: ignore[import-untyped]

        (folder / "model.skops").write_bytes(canonical_skops(skops.io.dumps(obj)))

    def load(self, folder: Path) -> Any:
        from conveyor.models import load_skops

        return load_skops(folder / "model.skops", source=f"the step output {folder.name!r}")


def canonical_skops(data: bytes) -> bytes:
    """The same estimator always gives the same bytes: skops names arrays and memo ids after
    ``id()`` (memory addresses) and stamps the zip with the time; here they are renumbered in
    order of appearance and dated 1980-01-01, so two executions of a deterministic step have
    equal output digests (the ML Test Score's reproducibility check compares them)."""
    import io
    import re
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(data))
    schema = src.read("schema.json").decode("utf-8")
    files = {old: f"{i:06d}.npy" for i, old in enumerate(dict.fromkeys(re.findall(r'"(\d+\.npy)"', schema)))}
    ids = {old: str(i) for i, old in enumerate(dict.fromkeys(re.findall(r'"__id__": (\d+)', schema)))}
    schema = re.sub(r'"(\d+\.npy)"', lambda m: f'"{files.get(m.group(1), m.group(1))}"', schema)
    schema = re.sub(r'"__id__": (\d+)', lambda m: f'"__id__": {ids[m.group(1)]}', schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in sorted((n for n in src.namelist() if n != "schema.json"), key=lambda n: files.get(n, n)):
            info = zipfile.ZipInfo(files.get(name, name), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, src.read(name))
        info = zipfile.ZipInfo("schema.json", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        dst.writestr(info, schema)
    return out.getvalue()


class ModelMaterializer:
    """Models of the other frameworks conveyor has a flavor for (XGBoost, LightGBM, Keras,
    PyTorch) as a model package in the framework's own format (no pickle; see
    docs/models.md). Loading goes through the package's trust checks and gives the loaded
    package (``conveyor.models.LoadedModel``: ``predict``/``predict_proba`` as served,
    ``.native`` for the framework's own object; a PyTorch module is TorchScript there, a
    LightGBM estimator its Booster), so the next step evaluates what would be served."""

    name = "model"
    FLAVORS = ("xgboost", "lightgbm", "keras", "pytorch")

    def handles(self, obj: object) -> bool:
        from conveyor.models import get_flavor

        for flavor in self.FLAVORS:  # each asks only frameworks already imported (obj came from one)
            try:
                if get_flavor(flavor).can_handle(obj):
                    return True
            except ImportError:
                continue
        return False

    def save(self, obj: Any, folder: Path) -> None:
        from conveyor.models import save

        save(obj, folder / "model")

    def load(self, folder: Path) -> Any:
        from conveyor.models import load

        return load(folder / "model")


class PathMaterializer:
    """A ``pathlib.Path`` to a file or folder: the content is stored; loading gives a path
    to a private copy of it."""

    name = "path"

    def handles(self, obj: object) -> bool:
        return isinstance(obj, Path)

    def save(self, obj: Path, folder: Path) -> None:
        if obj.is_dir():
            shutil.copytree(obj, folder / "content", symlinks=False)
            kind = "dir"
        elif obj.is_file():
            shutil.copy2(obj, folder / "content")
            kind = "file"
        else:
            raise InvalidInput(
                f"the step returned the path {str(obj)!r}, which does not exist",
                field="output", value=str(obj), hint="return a path to a file or folder the step wrote",
            )
        (folder / "path.json").write_text(json.dumps({"kind": kind, "name": obj.name}), encoding="utf-8")

    def load(self, folder: Path) -> Path:
        meta = json.loads((folder / "path.json").read_text(encoding="utf-8"))
        target = folder / (meta["name"] or "content")
        if target != folder / "content":
            (folder / "content").rename(target)
        return target


#: Built-ins, in lookup order (first that handles an object wins); values are "module:Class".
BUILTIN_MATERIALIZERS: dict[str, str] = {
    "pandas": "conveyor.pipelines._materializers:PandasMaterializer",
    "numpy": "conveyor.pipelines._materializers:NumpyMaterializer",
    "sklearn": "conveyor.pipelines._materializers:SklearnMaterializer",
    "model": "conveyor.pipelines._materializers:ModelMaterializer",
    "path": "conveyor.pipelines._materializers:PathMaterializer",
    "text": "conveyor.pipelines._materializers:TextMaterializer",
    "bytes": "conveyor.pipelines._materializers:BytesMaterializer",
    "json": "conveyor.pipelines._materializers:JsonMaterializer",
    "dataset": "conveyor.pipelines._datasets:DatasetMaterializer",
}

_registered: dict[str, str] = {}


def register_materializer(name: str, target: str) -> None:
    """Add a materializer ``"module:Class"`` under ``name``; registered ones are tried
    before the built-ins. In a worker process register it at import time of your step's
    module (or through the ``conveyor.materializers`` entry-point group).

    Example::

        register_materializer("torch", "my_pkg.materializers:TorchMaterializer")
    """
    if ":" not in target:
        raise InvalidInput(
            f"materializer target {target!r} is not 'module:Class'", field="target", value=target
        )
    _registered[name] = target
    _load.cache_clear()


def materializer_table() -> dict[str, str]:
    """Every known materializer, in lookup order: registered, entry points, built-ins."""
    from importlib.metadata import entry_points

    table = dict(_registered)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        table.setdefault(ep.name, ep.value)
    for name, target in BUILTIN_MATERIALIZERS.items():
        table.setdefault(name, target)
    return table


@cache
def _load(name: str, target: str) -> Materializer:
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"materializer {name!r} points at {target!r}, which cannot be imported: {exc}",
            field=f"materializers.{name}", value=target,
        ) from exc
    return cls()  # type: ignore[no-any-return]


def get_materializer(name: str) -> Materializer:
    table = materializer_table()
    if name not in table:
        raise ConfigError(
            f"no materializer named {name!r} (known: {', '.join(table)})",
            field="materializer", value=name,
            hint="install or register the package that provides it in this process",
        )
    return _load(name, table[name])


def materializer_for(obj: object, *, step: str = "?", output: str = "output") -> Materializer:
    """The first materializer that handles ``obj``; ``InvalidInput`` naming the type otherwise.

    A plugin that cannot be imported is skipped (one broken plugin must not stop every
    step) and named in the error if nothing else handles the object.
    """
    broken: list[str] = []
    for name, target in materializer_table().items():
        try:
            candidate = _load(name, target)
        except ConfigError:
            broken.append(f"{name} ({target})")
            continue
        if candidate.handles(obj):
            return candidate
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    unusable = f"; these could not be imported here: {', '.join(broken)}" if broken else ""
    raise InvalidInput(
        f"step {step!r} returned a {kind} as {output!r}, and no materializer handles that type{unusable}",
        field=f"{step}.{output}", value=kind,
        hint="return a supported type (DataFrame, ndarray, dict/list, estimator, str, bytes, Path), or "
        "register one: conveyor.pipelines.register_materializer('name', 'module:Class') or the "
        f"'{ENTRY_POINT_GROUP}' entry-point group",
    )
