"""One contract, one suite: every materializer (built-in or registered) round-trips its
values through a folder, writes only inside it, and never needs pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.errors import InvalidInput
from conveyor.models import UntrustedTypes
from conveyor.pipelines import get_materializer, materializer_for, materializer_table, register_materializer


class Fraction:
    """A third-party type with its own materializer (registered below)."""

    def __init__(self, num: int, den: int) -> None:
        self.num, self.den = num, den

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fraction) and (self.num, self.den) == (other.num, other.den)


class FractionMaterializer:
    name = "fraction"

    def handles(self, obj: object) -> bool:
        return isinstance(obj, Fraction)

    def save(self, obj: Fraction, folder: Path) -> None:
        (folder / "f.json").write_text(json.dumps([obj.num, obj.den]))

    def load(self, folder: Path) -> Fraction:
        return Fraction(*json.loads((folder / "f.json").read_text()))


@pytest.fixture(autouse=True)
def fraction_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registered for these tests only (pipelines in other tests must not inherit it)."""
    from conveyor.pipelines import _materializers

    monkeypatch.setattr(_materializers, "_registered", dict(_materializers._registered))
    register_materializer("fraction", f"{__name__}:FractionMaterializer")


def _model() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=0.5, max_iter=50).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


def _tree(tmp: Path) -> Path:
    root = tmp / "folder_out"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.bin").write_bytes(b"\x00\x01")
    return root


CASES = [
    ("json", lambda tmp: {"a": [1, 2.5, None], "b": {"c": True}}),
    ("json", lambda tmp: [1, "two", 3.0]),
    ("text", lambda tmp: "héllo\nwörld"),
    ("bytes", lambda tmp: b"\x00\xffbinary"),
    ("numpy", lambda tmp: np.arange(12, dtype=np.float32).reshape(3, 4)),
    ("pandas", lambda tmp: pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", None]}, index=[10, 11, 12])),
    ("pandas", lambda tmp: pd.Series([0.5, 1.5], name="score")),
    ("sklearn", lambda tmp: _model()),
    ("path", lambda tmp: _write(tmp / "one.csv", "a,b\n1,2\n")),
    ("path", _tree),
    ("fraction", lambda tmp: Fraction(3, 4)),
]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _equal(expected: Any, actual: Any) -> None:
    if isinstance(expected, np.ndarray):
        np.testing.assert_array_equal(expected, actual)
        assert expected.dtype == actual.dtype
    elif isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(expected, actual)
    elif isinstance(expected, pd.Series):
        pd.testing.assert_series_equal(expected, actual)
    elif isinstance(expected, Path):
        assert actual.name == expected.name
        if expected.is_dir():
            files = sorted(p.relative_to(expected).as_posix() for p in expected.rglob("*") if p.is_file())
            assert sorted(p.relative_to(actual).as_posix() for p in actual.rglob("*") if p.is_file()) == files
            for rel in files:
                assert (actual / rel).read_bytes() == (expected / rel).read_bytes()
        else:
            assert actual.read_bytes() == expected.read_bytes()
    elif type(expected).__module__.startswith("sklearn"):
        assert type(actual) is type(expected)
        assert actual.get_params() == expected.get_params()
        np.testing.assert_array_equal(actual.predict([[0.5], [2.5]]), expected.predict([[0.5], [2.5]]))
    else:
        assert actual == expected


@pytest.mark.parametrize(("name", "make"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_contract_round_trip(name: str, make: Any, tmp_path: Path) -> None:
    value = make(tmp_path)
    chosen = materializer_for(value)
    assert chosen.name == name
    folder = tmp_path / "store"
    folder.mkdir()
    chosen.save(value, folder)
    assert any(folder.iterdir()), "a materializer writes at least one file"
    for written in folder.rglob("*"):
        assert written.resolve().is_relative_to(folder.resolve())
        if written.is_file():
            assert b"\x80\x04\x95" not in written.read_bytes()[:3], "no pickles"
    loaded = get_materializer(name).load(folder)
    _equal(value, loaded)


@pytest.mark.parametrize("name", [*sorted(materializer_table()), "fraction"])
def test_contract_declares_its_name(name: str) -> None:
    materializer = get_materializer(name)
    assert materializer.name == name
    assert materializer.handles(object()) is False


def test_unsupported_type_names_the_type_and_how_to_register() -> None:
    class Opaque:
        pass

    with pytest.raises(InvalidInput) as info:
        materializer_for(Opaque(), step="train", output="model")
    message = str(info.value)
    assert "Opaque" in message and "train" in message
    assert "register_materializer" in message and "conveyor.materializers" in message


def test_object_arrays_are_refused_rather_than_pickled() -> None:
    with pytest.raises(InvalidInput):
        materializer_for(np.array([object()], dtype=object))


def test_sklearn_loader_refuses_foreign_types(tmp_path: Path) -> None:
    import skops.io
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    model = Pipeline([("f", FunctionTransformer(func=json.dumps))])
    skops.io.dump(model, tmp_path / "model.skops")
    with pytest.raises(UntrustedTypes, match="json.dumps"):  # the model flavor's one policy
        get_materializer("sklearn").load(tmp_path)


def test_bad_registration_is_reported() -> None:
    with pytest.raises(InvalidInput):
        register_materializer("broken", "no_colon_here")


def test_a_broken_plugin_is_skipped_and_named() -> None:
    register_materializer("ghost", "no_such_module_xyz:Ghost")
    assert materializer_for([1, 2]).name == "json"
    with pytest.raises(InvalidInput, match="ghost"):
        materializer_for(object())
