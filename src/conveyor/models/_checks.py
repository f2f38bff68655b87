"""The shared flavor suite: every flavor, built-in or plugin, passes the same checks.

Like scikit-learn's ``estimator_checks``: a plugin author builds a ``FlavorCase`` (a fitted
model, an input example, and the original model's own predict) and runs
``check_flavor(case, tmp_path)``, or parametrizes a test over ``flavor_checks()``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.errors import InvalidInput

@dataclass(frozen=True)
class FlavorCase:
    """One model for the suite: ``reference(example)`` is the original model's prediction."""

    flavor: str
    model: Any
    example: Any  # DataFrame or ndarray, several rows
    reference: Callable[[Any], Any]
    options: Mapping[str, Any] = field(default_factory=dict)
    trusted: list[str] | None = None
    rtol: float = 1e-5


Check = Callable[[FlavorCase, Path], None]


def _save(case: FlavorCase, folder: Path) -> Path:
    from conveyor.models._package import save

    target = folder / "pkg"
    if not target.exists():
        save(case.model, target, input_example=case.example, flavor=case.flavor, **case.options)
    return target


def _load(case: FlavorCase, folder: Path) -> Any:
    from conveyor.models._package import load

    return load(folder, trusted=case.trusted)


def _assert_close(got: Any, want: Any, rtol: float, what: str) -> None:
    import numpy as np

    got_a, want_a = np.asarray(got), np.asarray(want)
    if got_a.shape != want_a.shape:
        want_a = want_a.reshape(got_a.shape) if got_a.size == want_a.size else want_a
    assert got_a.shape == want_a.shape, f"{what}: shape {got_a.shape} != {want_a.shape}"
    if got_a.dtype.kind in "fc" or want_a.dtype.kind in "fc":
        np.testing.assert_allclose(got_a, want_a, rtol=rtol, atol=1e-6, err_msg=what)
    else:
        np.testing.assert_array_equal(got_a, want_a, err_msg=what)


def _rows(example: Any, n: int) -> Any:
    return example.iloc[:n] if hasattr(example, "iloc") else example[:n]


def check_registered(case: FlavorCase, folder: Path) -> None:
    from conveyor.models._flavor import Flavor, flavor_names, get_flavor

    flavor = get_flavor(case.flavor)
    assert isinstance(flavor, Flavor) and flavor.name == case.flavor
    assert case.flavor in flavor_names()
    assert get_flavor(case.flavor) is flavor, "flavors are loaded once"


def check_can_handle(case: FlavorCase, folder: Path) -> None:
    from conveyor.models._flavor import flavor_for, get_flavor

    flavor = get_flavor(case.flavor)
    assert flavor.can_handle(case.model), f"{case.flavor} does not recognise its own model"
    assert not flavor.can_handle(object()), f"{case.flavor} claims a bare object"
    if "factory" not in case.options:  # a state_dict case is chosen explicitly
        assert flavor_for(case.model).name == case.flavor


def check_save_writes_safe_files(case: FlavorCase, folder: Path) -> None:
    import json

    from conveyor.models._meta import META_FILE, read_meta

    pkg = _save(case, folder)
    meta = read_meta(pkg)
    assert meta.flavor == case.flavor
    json.dumps(meta.to_dict())
    assert (pkg / META_FILE).is_file()
    from fnmatch import fnmatch

    from conveyor.models._flavor import get_flavor
    from conveyor.models._pickles import pickle_streams

    declared = get_flavor(case.flavor).restricted_pickles
    for path in pkg.rglob("*"):
        if path.is_file():  # whole files, and every member of zip archives (.pt, .keras, .npz…)
            rel = path.relative_to(pkg).as_posix()
            for found in pickle_streams(path, name=rel):
                member = found[len(rel) + 1:]
                allowed = member and any(fnmatch(member, pattern) for pattern in declared.get(rel, ()))
                assert allowed, f"{found} is a pickle: flavors must not pickle (beyond restricted_pickles)"


def check_files_and_references_recorded(case: FlavorCase, folder: Path) -> None:
    """The package records every file with its size, and the code it names, at save time."""
    from conveyor.models._files import PackageFiles
    from conveyor.models._flavor import get_flavor
    from conveyor.models._meta import META_FILE, read_meta

    pkg = _save(case, folder)
    meta = read_meta(pkg)
    on_disk = {p.relative_to(pkg).as_posix(): p.stat().st_size for p in pkg.rglob("*") if p.is_file()}
    on_disk.pop(META_FILE)
    assert meta.files == on_disk, f"recorded files {meta.files} != the folder's {on_disk}"
    found = [r.to_dict() for r in get_flavor(case.flavor).references(PackageFiles(pkg, meta.files), meta.flavor_config)]
    assert list(meta.references) == found, "references recorded at save differ from what load checks"


def check_roundtrip_predictions(case: FlavorCase, folder: Path) -> None:
    model = _load(case, _save(case, folder))
    assert model.flavor == case.flavor
    _assert_close(model.predict(case.example), case.reference(case.example), case.rtol, "loaded vs original")


def check_one_row(case: FlavorCase, folder: Path) -> None:
    model = _load(case, _save(case, folder))
    one = _rows(case.example, 1)
    got = model.predict(one)
    assert len(got) == 1, "one input row must give one prediction"
    _assert_close(got, case.reference(one), case.rtol, "one row")


def check_input_forms(case: FlavorCase, folder: Path) -> None:
    import numpy as np

    model = _load(case, _save(case, folder))
    base = model.predict(case.example)
    if hasattr(case.example, "to_dict"):
        records = case.example.to_dict(orient="records")
        if all(str(t).startswith(("float", "int", "bool")) for t in case.example.dtypes):
            _assert_close(model.predict(case.example.to_numpy()), base, case.rtol, "ndarray input")
    else:
        name = model.signature.input_names if model.signature else []
        if len(name) == 1:
            records = [{name[0]: row.tolist()} for row in case.example]
        else:
            records = [dict(zip(name, row.tolist())) for row in case.example]
        _assert_close(model.predict(np.asarray(case.example)), base, case.rtol, "ndarray input")
    _assert_close(model.predict(records), base, case.rtol, "list-of-dicts input")


def check_signature_enforced(case: FlavorCase, folder: Path) -> None:
    model = _load(case, _save(case, folder))
    assert model.signature is not None and model.signature.inputs, "an input example must give a signature"
    assert model.signature.outputs, "the output spec is inferred from the model's prediction"
    first = model.signature.input_names[0]
    try:
        model.predict([{"not_a_column": 1.0}])
    except InvalidInput as exc:
        assert first in str(exc) and "not_a_column" in str(exc)
    else:
        raise AssertionError("predict accepted input with none of the signature's columns")


def check_relocatable(case: FlavorCase, folder: Path) -> None:
    pkg = _save(case, folder)
    moved = folder / "moved"
    shutil.copytree(pkg, moved)
    model = _load(case, moved)
    shutil.rmtree(moved)  # loaded models hold no file handles into the package
    _assert_close(model.predict(case.example), case.reference(case.example), case.rtol, "moved package")


def check_requirements_pinned(case: FlavorCase, folder: Path) -> None:
    from importlib.metadata import PackageNotFoundError, version

    from conveyor.models._flavor import get_flavor
    from conveyor.models._meta import read_meta

    pins = set(read_meta(_save(case, folder)).requirements)
    for name in (*get_flavor(case.flavor).requirements, "numpy", "pandas"):
        try:
            assert f"{name}=={version(name)}" in pins, f"{name} is not pinned"
        except PackageNotFoundError:
            continue


def check_store_roundtrip(case: FlavorCase, folder: Path) -> None:
    from conveyor.blobs import BlobStore
    from conveyor.models._package import load_from_store

    blobs = BlobStore.open(folder / "blobs")
    blobs.init()
    tree = blobs.put_tree(_save(case, folder))
    model = load_from_store(blobs, str(tree.digest), trusted=case.trusted)
    _assert_close(model.predict(case.example), case.reference(case.example), case.rtol, "from the store")


_CHECKS: tuple[Check, ...] = (
    check_registered,
    check_can_handle,
    check_save_writes_safe_files,
    check_files_and_references_recorded,
    check_roundtrip_predictions,
    check_one_row,
    check_input_forms,
    check_signature_enforced,
    check_relocatable,
    check_requirements_pinned,
    check_store_roundtrip,
)


def flavor_checks() -> list[Check]:
    """Every check of the shared suite (each takes a ``FlavorCase`` and an empty folder)."""
    return list(_CHECKS)


def check_flavor(case: FlavorCase, folder: str | Path) -> None:
    """Run the whole suite on ``case``; raises ``AssertionError`` naming the failed check.

    Example::

        >>> check_flavor(FlavorCase("sklearn", clf, X[:10], clf.predict), tmp_path)  # doctest: +SKIP
    """
    for check in _CHECKS:
        sub = Path(folder) / check.__name__
        sub.mkdir(parents=True, exist_ok=True)
        check(case, sub)
